import { performance } from 'node:perf_hooks';
import { ConveyorError } from '../core/errors.ts';
import type { Work } from './types.ts';

/** What the watchdog needs of a running work item (the runtime's WorkItem has these fields). */
export interface Watched extends Work {
  startedAt: number;
  touchedAt: number;
  /** Between enter() and leave(): its handler runs. */
  watched: boolean;
}

/**
 * One interval per consumer instead of timers or promises per message: it touches handlers
 * that have run past half the broker's in-flight timeout (so slow work is not redelivered under
 * a running handler) and hands handlers past their hard deadline to `onExpire` (which aborts
 * their signal and fails them with ERR_TIMEOUT, freeing their slot).
 */
export class Watchdog {
  /**
   * The consumer's work items (a superset of the running handlers): the watchdog keeps no set of
   * its own, so a message costs a flag here instead of a second Set add and delete.
   */
  readonly #works: Iterable<Watched>;
  readonly #touchAfterMs: number;
  readonly #hardLimitMs: number;
  readonly #onExpire: (work: Watched, error: ConveyorError) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(touchAfterMs: number, hardLimitMs: number, works: Iterable<Watched>, onExpire: (work: Watched, error: ConveyorError) => void) {
    this.#touchAfterMs = touchAfterMs;
    this.#hardLimitMs = hardLimitMs;
    this.#works = works;
    this.#onExpire = onExpire;
  }

  /** `work` must be among the works given to the constructor. */
  enter(work: Watched): void {
    // performance.now() (from perf_hooks: the global is a lazy getter): monotonic, cheaper than Date.now().
    work.startedAt = work.touchedAt = performance.now();
    work.watched = true;
    if (!this.#timer) {
      const every = Math.max(5, Math.min(this.#touchAfterMs, this.#hardLimitMs) / 4);
      this.#timer = setInterval(() => this.#scan(), every);
      this.#timer.unref();
    }
  }

  leave(work: Watched): void {
    work.watched = false;
  }

  #scan(): void {
    const now = performance.now();
    let running = 0;
    for (const work of this.#works) {
      if (!work.watched) continue;
      if (now - work.startedAt >= this.#hardLimitMs) {
        work.watched = false;
        work.timedOut = true;
        this.#onExpire(
          work,
          new ConveyorError('ERR_TIMEOUT', `handler ran past its ${this.#hardLimitMs} ms deadline`, { details: { limitMs: this.#hardLimitMs } }),
        );
      } else {
        running++;
        if (now - work.touchedAt >= this.#touchAfterMs) {
          work.touchedAt = now;
          work.context.touch();
        }
      }
    }
    if (running === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
