import { ConveyorError } from '../core/errors.ts';
import type { Work } from './types.ts';

/** A running handler the watchdog looks after. */
export interface Watched {
  readonly work: Work;
  started: number;
  touched: number;
  /** Rejects the handler's race with ERR_TIMEOUT. */
  expire: (error: Error) => void;
}

/**
 * One interval per consumer instead of timers per message: it touches handlers that have run
 * past half the broker's in-flight timeout (so slow work is not redelivered under a running
 * handler) and expires handlers past their hard deadline (abort signal + ERR_TIMEOUT).
 */
export class Watchdog {
  readonly #running = new Set<Watched>();
  readonly #touchAfterMs: number;
  readonly #hardLimitMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(touchAfterMs: number, hardLimitMs: number) {
    this.#touchAfterMs = touchAfterMs;
    this.#hardLimitMs = hardLimitMs;
  }

  enter(work: Work, expire: (error: Error) => void): Watched {
    const now = Date.now();
    const entry: Watched = { work, started: now, touched: now, expire };
    this.#running.add(entry);
    if (!this.#timer) {
      const every = Math.max(5, Math.min(this.#touchAfterMs, this.#hardLimitMs) / 4);
      this.#timer = setInterval(() => this.#scan(), every);
      this.#timer.unref();
    }
    return entry;
  }

  leave(entry: Watched): void {
    this.#running.delete(entry);
  }

  get size(): number {
    return this.#running.size;
  }

  #scan(): void {
    const now = Date.now();
    for (const entry of this.#running) {
      if (now - entry.started >= this.#hardLimitMs) {
        this.#running.delete(entry);
        entry.work.timedOut = true;
        entry.expire(
          new ConveyorError('ERR_TIMEOUT', `handler ran past its ${this.#hardLimitMs} ms deadline`, {
            details: { limitMs: this.#hardLimitMs },
          }),
        );
      } else if (now - entry.touched >= this.#touchAfterMs) {
        entry.touched = now;
        entry.work.context.touch();
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
