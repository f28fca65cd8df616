import { ConveyorError } from '../core/errors.ts';
import type { Work } from './types.ts';

/** What the watchdog needs of a running work item (the runtime's WorkItem has these fields). */
export interface Watched extends Work {
  startedAt: number;
  touchedAt: number;
}

/**
 * One interval per consumer instead of timers or promises per message: it touches handlers
 * that have run past half the broker's in-flight timeout (so slow work is not redelivered under
 * a running handler) and hands handlers past their hard deadline to `onExpire` (which aborts
 * their signal and fails them with ERR_TIMEOUT, freeing their slot).
 */
export class Watchdog {
  readonly #running = new Set<Watched>();
  readonly #touchAfterMs: number;
  readonly #hardLimitMs: number;
  readonly #onExpire: (work: Watched, error: ConveyorError) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(touchAfterMs: number, hardLimitMs: number, onExpire: (work: Watched, error: ConveyorError) => void) {
    this.#touchAfterMs = touchAfterMs;
    this.#hardLimitMs = hardLimitMs;
    this.#onExpire = onExpire;
  }

  enter(work: Watched): void {
    // performance.now(): monotonic, and cheaper per message than Date.now().
    work.startedAt = work.touchedAt = performance.now();
    this.#running.add(work);
    if (!this.#timer) {
      const every = Math.max(5, Math.min(this.#touchAfterMs, this.#hardLimitMs) / 4);
      this.#timer = setInterval(() => this.#scan(), every);
      this.#timer.unref();
    }
  }

  leave(work: Watched): void {
    this.#running.delete(work);
  }

  #scan(): void {
    const now = performance.now();
    for (const work of this.#running) {
      if (now - work.startedAt >= this.#hardLimitMs) {
        this.#running.delete(work);
        work.timedOut = true;
        this.#onExpire(
          work,
          new ConveyorError('ERR_TIMEOUT', `handler ran past its ${this.#hardLimitMs} ms deadline`, { details: { limitMs: this.#hardLimitMs } }),
        );
      } else if (now - work.touchedAt >= this.#touchAfterMs) {
        work.touchedAt = now;
        work.context.touch();
      }
    }
    if (this.#running.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
