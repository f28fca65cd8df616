/**
 * Handler time per consumer for the dashboard's p50/p99. The runtime keeps counters, not
 * durations, so this is a middleware an app opts into (`consume(..., { middleware: [timings.middleware()] })`):
 * the hot path of an app that does not use it pays nothing. It times decode + handler (user
 * middleware runs outside the timeout step and the decode), successful or not.
 */
import type { Handler, Middleware, Work } from '../runtime/types.ts';

/** Durations kept per consumer: the latest ones, so the percentiles follow what runs now. */
const WINDOW = 1024;

class Reservoir {
  readonly values = new Float64Array(WINDOW);
  count = 0;

  add(ms: number): void {
    this.values[this.count % WINDOW] = ms;
    this.count++;
  }

  percentiles(): { p50: number; p99: number } | undefined {
    const n = Math.min(this.count, WINDOW);
    if (n === 0) return undefined;
    const sorted = this.values.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))]!;
    return { p50: at(0.5), p99: at(0.99) };
  }
}

export class HandlerTimings {
  readonly #byConsumer = new Map<string, Reservoir>();

  /** The middleware to add to a consumer's `middleware` option. */
  middleware(): Middleware {
    const timings = this.#byConsumer;
    return function timeHandler(next: Handler): Handler {
      return async function timedHandler(work: Work) {
        const started = performance.now();
        try {
          await next(work);
        } finally {
          const key = `${work.delivery.topic}\0${work.delivery.channel}`;
          let r = timings.get(key);
          if (!r) timings.set(key, (r = new Reservoir()));
          r.add(performance.now() - started);
        }
      };
    };
  }

  /** p50/p99 in ms of the latest handler runs of `topic`/`channel`, or undefined if none ran. */
  of(topic: string, channel: string): { p50: number; p99: number } | undefined {
    return this.#byConsumer.get(`${topic}\0${channel}`)?.percentiles();
  }
}
