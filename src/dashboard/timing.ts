/**
 * Exact handler-time percentiles per consumer, for an app that wants them instead of the
 * runtime's histogram buckets (which the dashboard reads by default): a middleware
 * (`consume(..., { middleware: [timings.middleware()] })`, timing decode + handler, successful or
 * not) or a batch-handler wrapper (`timings.batch(topic, channel, sink.handler)`).
 */
import type { BatchContext, BatchHandler } from '../runtime/batch-consumer.ts';
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
  /** Consumers timed per batch (consumeBatch), whose p50/p99 are a batch's, not a message's. */
  readonly #batched = new Set<string>();

  #record(key: string, ms: number): void {
    let r = this.#byConsumer.get(key);
    if (!r) this.#byConsumer.set(key, (r = new Reservoir()));
    r.add(ms);
  }

  /** The middleware to add to a consumer's `middleware` option. */
  middleware(): Middleware {
    const record = (key: string, ms: number) => this.#record(key, ms);
    return function timeHandler(next: Handler): Handler {
      return async function timedHandler(work: Work) {
        const started = performance.now();
        try {
          await next(work);
        } finally {
          record(`${work.delivery.topic}\0${work.delivery.channel}`, performance.now() - started);
        }
      };
    };
  }

  /**
   * A batch handler (consumeBatch) that records how long each batch takes, the sink's commit
   * included. Keeps the handler's outage `probe`, which the batch consumer reads.
   */
  batch<T>(topic: string, channel: string, handler: BatchHandler<T>): BatchHandler<T> {
    const key = `${topic}\0${channel}`;
    this.#batched.add(key);
    const timed = async (values: T[], context: BatchContext) => {
      const started = performance.now();
      try {
        return await handler(values, context);
      } finally {
        this.#record(key, performance.now() - started);
      }
    };
    return handler.probe ? Object.assign(timed, { probe: handler.probe }) : timed;
  }

  /** p50/p99 in ms of the latest handler runs of `topic`/`channel`, or undefined if none ran. */
  of(topic: string, channel: string): { p50: number; p99: number; per?: 'batch' } | undefined {
    const key = `${topic}\0${channel}`;
    const p = this.#byConsumer.get(key)?.percentiles();
    return p && this.#batched.has(key) ? { ...p, per: 'batch' } : p;
  }
}
