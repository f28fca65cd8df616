/**
 * The log line for dead letters, rate-limited: a dead letter is a message the pipeline gave up
 * on, so it must never pass unseen, but a flood of bad input must not flood the log either. The
 * first dead letter of each (dead topic, error code) in a window is written in full (id, where
 * from, attempts, reason); the rest of that window are counted and written as one line when the
 * window ends. Every dead letter so appears in exactly one line.
 */
import { errorCode } from '../core/errors.ts';
import type { FailureEvent } from './events.ts';

export interface DeadLetterLogOptions {
  /** Length of a rate-limit window, ms. @default 10000 */
  everyMs?: number;
}

export interface DeadLetterLog {
  /** Call for every dead letter. */
  dead(event: FailureEvent & { deadTopic: string }): void;
  /** Writes the counts still pending (call on close) and stops the timer. */
  flush(): void;
}

/** A source of `dead` events: an App. */
interface DeadSource {
  on(event: 'dead', listener: (event: FailureEvent & { deadTopic: string }) => void): unknown;
  off(event: 'dead', listener: (event: FailureEvent & { deadTopic: string }) => void): unknown;
}

/**
 * @example
 * const log = deadLetterLog((line) => process.stderr.write(`${line}\n`));
 * pipeline.on('dead', (e) => log.dead(e));
 */
export function deadLetterLog(write: (line: string) => void, options: DeadLetterLogOptions = {}): DeadLetterLog {
  const everyMs = options.everyMs ?? 10_000;
  // key → how many were held back this window; a key present means its full line was written.
  const window = new Map<string, { deadTopic: string; code: string; held: number }>();
  let timer: NodeJS.Timeout | undefined;

  function flush(): void {
    for (const { deadTopic, code, held } of window.values()) {
      if (held > 0) write(`conveyor: ${held} more dead letter${held === 1 ? '' : 's'} to ${deadTopic} (${code}) in the last ${Math.round(everyMs / 1000)} s`);
    }
    window.clear();
    if (timer) clearTimeout(timer);
    timer = undefined;
  }

  return {
    dead({ delivery: d, error, deadTopic }) {
      const code = errorCode(error);
      const key = `${deadTopic}\u0000${code}`;
      const seen = window.get(key);
      if (seen) {
        seen.held++;
        return;
      }
      window.set(key, { deadTopic, code, held: 0 });
      write(
        `conveyor: dead letter: message ${d.id} on ${d.topic}/${d.channel} after ${d.attempts} attempt${d.attempts === 1 ? '' : 's'} ` +
          `→ ${deadTopic}: ${code}: ${error.message.replace(/[\r\n]+/g, ' ').slice(0, 512)}`,
      );
      if (!timer) {
        timer = setTimeout(flush, everyMs);
        // The log must never be what keeps a process alive.
        timer.unref();
      }
    },
    flush,
  };
}

/** Logs an app's dead letters until `stop()` (which writes what is pending). */
export function logDeadLetters(source: DeadSource, write: (line: string) => void, options: DeadLetterLogOptions = {}): { stop(): void } {
  const log = deadLetterLog(write, options);
  const listener = (event: FailureEvent & { deadTopic: string }) => log.dead(event);
  source.on('dead', listener);
  return {
    stop() {
      source.off('dead', listener);
      log.flush();
    },
  };
}
