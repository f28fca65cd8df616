import { ConveyorError, isConveyorError, isRetryable } from '../core/errors.ts';
import type { Delivery } from '../core/message.ts';
import type { MessageDefinition } from '../core/schema.ts';
import type { Subscription } from '../core/transport.ts';
import { LatencyHistogram } from '../observability/histogram.ts';
import { batchSpan } from '../observability/tracing.ts';
import { backoffDelay, type OutageProbe, waitForRetry } from './backoff.ts';
import type { PublishFn } from './context.ts';
import { type AppCore, type ConsumerStats, emptyStats } from './consumer.ts';
import { deadHeaders } from './middleware/dead-letter.ts';
import { asError } from './middleware/retry.ts';
import { checkBindable, type ResolvedConsume } from './options.ts';
import type { Work } from './types.ts';

/** Per-message facts a batch handler gets, aligned with its values (for idempotent writes). */
export interface BatchMessage {
  readonly id: string;
  readonly topic: string;
  readonly channel: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly attempts: number;
  readonly timestamp: number;
  /** Body size in bytes. */
  readonly size: number;
}

export interface BatchContext {
  readonly messages: readonly BatchMessage[];
  /** How many times this exact batch has been tried before (0 on the first try). */
  readonly retries: number;
  readonly publish: PublishFn;
  /** Aborted when the app is force-closed. */
  readonly signal: AbortSignal;
}

/**
 * A batch handler. It may carry a `probe` (a sink's cheap "is the database back?"): during an
 * outage the batch is then retried as soon as the probe succeeds, not after the whole backoff.
 */
export type BatchHandler<T> = ((values: T[], context: BatchContext) => unknown) & { probe?: OutageProbe };

interface Item {
  delivery: Delivery;
  value: unknown;
}

/** Dependency outages (a sink or broker down): retried without limit, never bisected or dead-lettered. */
const OUTAGE_CODES = new Set(['ERR_SINK', 'ERR_TRANSPORT', 'ERR_NOT_CONFIRMED', 'ERR_TIMEOUT', 'ERR_BACKPRESSURE']);
export function isOutage(error: unknown): boolean {
  return isConveyorError(error) && error.retryable && OUTAGE_CODES.has(error.code);
}

/**
 * Collects deliveries into batches (flushed on size, age or bytes) and acks a batch only after
 * its handler resolved — for sinks that commit many rows at once. While a batch fails, its
 * messages stay in flight (touched, not nacked) and it is retried with backoff; the
 * subscription's in-flight bound stops intake meanwhile, so memory stays bounded. Outages
 * retry without limit. Other failures, past the attempts, split the batch in halves until the
 * poison messages stand alone; those go to dead-letter with the reason, the rest go through.
 * Messages that do not decode never enter a batch.
 */
export class BatchConsumer<T> {
  readonly stats: ConsumerStats & { batches: number; batchRetries: number };
  /** Handler time per batch. */
  readonly handlerTime = new LatencyHistogram();
  readonly #core: AppCore;
  readonly #options: ResolvedConsume;
  readonly #definition: MessageDefinition<T>;
  readonly #handler: BatchHandler<T>;
  readonly #controller = new AbortController();
  #subscription: Subscription | undefined;
  #current: Item[] = [];
  #currentBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #queue: Item[][] = [];
  readonly #drains = new Set<Promise<void>>();
  readonly #held = new Set<Delivery>();
  #touchTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #force = false;
  readonly #deadPending = new Set<Promise<void>>();

  constructor(core: AppCore, definition: MessageDefinition<T>, options: ResolvedConsume, handler: BatchHandler<T>) {
    this.#core = core;
    this.#definition = definition;
    this.#options = options;
    this.#handler = handler;
    this.stats = { ...emptyStats(definition.topic, options.channel), batches: 0, batchRetries: 0 };
  }

  async start(): Promise<void> {
    const transport = await this.#core.transport();
    checkBindable(transport, this.#definition.topic, this.#options.bind);
    this.#subscription = await transport.subscribe(
      this.#definition.topic,
      this.#options.channel,
      { maxInFlight: this.#options.maxInFlight, timeoutMs: this.#options.timeoutMs, ...(this.#options.bind ? { bind: this.#options.bind } : {}) },
      (delivery) => this.#onDelivery(delivery),
    );
    // Keep held messages from timing out at the broker while they wait or retry.
    this.#touchTimer = setInterval(() => {
      for (const d of this.#held) d.touch();
    }, Math.max(10, this.#options.timeoutMs / 2));
    this.#touchTimer.unref();
  }

  #onDelivery(delivery: Delivery): void {
    let value: unknown;
    try {
      value = this.#definition.decode(delivery.body, delivery.headers);
    } catch (error) {
      this.#deadLetter({ delivery, value: undefined }, error);
      return;
    }
    this.#held.add(delivery);
    this.#current.push({ delivery, value });
    this.#currentBytes += delivery.body.length;
    this.stats.waiting = this.#held.size;
    const { maxSize, maxBytes, maxWaitMs } = this.#options.batch;
    if (this.#current.length >= maxSize || this.#currentBytes >= maxBytes) this.#cut();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.#cut(), maxWaitMs);
      this.#timer.unref();
    }
  }

  /** Closes the batch being filled and queues it for the (sequential) flusher. */
  #cut(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#current.length === 0) return;
    this.#queue.push(this.#current);
    this.#current = [];
    this.#currentBytes = 0;
    if (this.#drains.size < this.#options.batch.concurrency) {
      const drain: Promise<void> = this.#drainQueue().finally(() => this.#drains.delete(drain));
      this.#drains.add(drain);
    }
  }

  async #drainQueue(): Promise<void> {
    for (let batch = this.#queue.shift(); batch; batch = this.#queue.shift()) {
      this.stats.running += batch.length;
      await this.#process(batch);
      this.stats.running -= batch.length;
    }
  }

  async #process(items: Item[]): Promise<void> {
    let retries = 0;
    for (;;) {
      if (this.#force) return this.#release(items);
      try {
        this.stats.batches++;
        const started = performance.now();
        try {
          await batchSpan(
            this.#core.system,
            this.#definition.topic,
            this.#options.channel,
            items.map((i) => i.delivery.headers),
            async () =>
              this.#handler(
                items.map((i) => i.value as T),
                { messages: items.map(toBatchMessage), retries, publish: this.#core.publish, signal: this.#controller.signal },
              ),
          );
        } finally {
          this.handlerTime.observe((performance.now() - started) / 1000);
        }
        for (const item of items) this.#settle(item.delivery, 'ack');
        this.stats.processed += items.length;
        return;
      } catch (error) {
        retries++;
        this.stats.batchRetries++;
        if (this.#force) return this.#release(items);
        const outage = isOutage(error);
        if (outage || (isRetryable(error) && retries < this.#options.attempts)) {
          const delayMs = backoffDelay(this.#options.backoff, Math.min(retries, 30));
          this.#core.emit('retry', { delivery: items[0]!.delivery, error: asError(error), delayMs });
          // An outage with a probe: retry once the dependency answers; the backoff is only the upper bound.
          await waitForRetry(delayMs, this.#controller.signal, outage ? this.#handler.probe : undefined);
          continue;
        }
        if (items.length > 1) {
          const half = items.length >> 1;
          await this.#process(items.slice(0, half));
          await this.#process(items.slice(half));
          return;
        }
        await this.#deadLetter(items[0]!, error);
        return;
      }
    }
  }

  #deadLetter(item: Item, error: unknown): Promise<void> {
    const err = asError(error);
    const d = item.delivery;
    this.#held.add(d);
    if (this.#options.deadLetterTopic === false) {
      this.#settle(d, 'ack');
      this.stats.discarded++;
      this.#core.emit('discarded', { delivery: d, error: err });
      return Promise.resolve();
    }
    const deadTopic = this.#options.deadLetterTopic;
    const work = { delivery: d } as Work;
    const sent = this.#core
      .publishRaw(deadTopic, { id: d.id, body: d.body, headers: deadHeaders(work, err) })
      .then(
        () => {
          this.#settle(d, 'ack');
          this.stats.dead++;
          this.#core.emit('dead', { delivery: d, error: err, deadTopic });
        },
        (publishError: unknown) => {
          // Not confirmed on the dead-letter topic: give it back to the broker, never drop it.
          this.#settle(d, 'nack');
          this.#core.emit('warning', { error: asError(publishError), where: `dead-letter publish to ${deadTopic}` });
        },
      );
    this.#deadPending.add(sent);
    return sent.finally(() => this.#deadPending.delete(sent));
  }

  #settle(delivery: Delivery, how: 'ack' | 'nack'): void {
    this.#held.delete(delivery);
    this.stats.waiting = this.#held.size;
    if (how === 'ack') delivery.ack();
    else delivery.nack(0);
  }

  /** Force close: what was not committed goes back to the broker. */
  #release(items: Item[]): void {
    for (const item of items) if (this.#held.has(item.delivery)) this.#settle(item.delivery, 'nack');
  }

  /**
   * Stop taking; flush the last partial batch; wait for commits; leave the channel. `force`
   * (also after a graceful close began) aborts the handler's signal, hands every uncommitted
   * message back to the broker and leaves without waiting for the handler.
   */
  close(options: { force?: boolean } = {}): Promise<void> {
    if (options.force && !this.#force) {
      this.#force = true;
      this.#subscription?.pause();
      this.#controller.abort(new ConveyorError('ERR_CLOSED', 'app force-closed'));
      if (this.#timer) clearTimeout(this.#timer);
      this.#release(this.#current);
      this.#current = [];
      for (const batch of this.#queue.splice(0)) this.#release(batch);
      for (const d of [...this.#held]) this.#settle(d, 'nack');
    }
    this.#closing ??= (async () => {
      this.#subscription?.pause();
      if (!this.#force) {
        this.#cut();
        while (this.#drains.size > 0) await Promise.all([...this.#drains]);
        await Promise.allSettled([...this.#deadPending]);
      }
      if (this.#touchTimer) clearInterval(this.#touchTimer);
      await this.#subscription?.close();
    })();
    return this.#closing;
  }
}

function toBatchMessage(item: Item): BatchMessage {
  const d = item.delivery;
  return { id: d.id, topic: d.topic, channel: d.channel, headers: d.headers, attempts: d.attempts, timestamp: d.timestamp, size: d.body.length };
}
