import { performance } from 'node:perf_hooks';
import type { Delivery, OutgoingMessage } from '../core/message.ts';
import type { MessageDefinition } from '../core/schema.ts';
import { ConveyorError } from '../core/errors.ts';
import { Ring } from '../engine/ring.ts';
import type { Subscription, Transport } from '../core/transport.ts';
import { LatencyHistogram } from '../observability/histogram.ts';
import { processSpan, tracingActive } from '../observability/tracing.ts';
import { type PublishFn, WorkItem } from './context.ts';
import type { AppEvents } from './events.ts';
import { compose } from './middleware/compose.ts';
import { deadLetter, discard } from './middleware/dead-letter.ts';
import { dedup } from './middleware/dedup.ts';
import { retry } from './middleware/retry.ts';
import { timeout } from './middleware/timeout.ts';
import { checkBindable, type ResolvedConsume } from './options.ts';
import type { Handler, MessageHandler, Middleware, Work } from './types.ts';
import { Watchdog } from './watchdog.ts';

/** What consumers need from their app. */
export interface AppCore {
  transport(): Promise<Transport>;
  publish: PublishFn;
  /** Publishes an already-encoded message (dead-letter), batched with the app's other publishes. */
  publishRaw(topic: string, message: OutgoingMessage): Promise<void>;
  emit<K extends keyof AppEvents>(event: K, ...args: AppEvents[K]): boolean;
  listening(event: keyof AppEvents): boolean;
  /** The transport's kind (URL scheme), for traces' messaging.system. */
  readonly system: string;
}

export interface ConsumerStats {
  topic: string;
  channel: string;
  running: number;
  waiting: number;
  processed: number;
  retried: number;
  dead: number;
  discarded: number;
  duplicates: number;
}

/** Fresh counters for a consumer of `topic` on `channel`. */
export function emptyStats(topic: string, channel: string): ConsumerStats {
  return { topic, channel, running: 0, waiting: 0, processed: 0, retried: 0, dead: 0, discarded: 0, duplicates: 0 };
}

/**
 * The chain every consumer runs: retry ▸ dead-letter ▸ dedup ▸ user middleware ▸ timeout ▸
 * handler. Also returns the failure chain (retry ▸ dead-letter ▸ a step that rethrows the
 * work's error) with which the watchdog settles a handler that hung past its deadline.
 */
export function buildChain(
  core: AppCore,
  options: ResolvedConsume,
  stats: ConsumerStats,
  watchdog: Watchdog,
  inner: Handler,
): { chain: Handler; failed: (work: Work, error: Error) => Promise<void> } {
  const retryOptions = { attempts: options.attempts, backoff: options.backoff };
  const chain: Middleware[] = [
    retry(retryOptions, (work, error, delayMs) => {
      stats.retried++;
      if (core.listening('retry')) core.emit('retry', { delivery: work.delivery, error: error as Error, delayMs });
    }),
  ];
  if (options.deadLetterTopic !== false) {
    const deadTopic = options.deadLetterTopic;
    chain.push(
      deadLetter({
        topic: () => deadTopic,
        publish: (topic, message) => core.publishRaw(topic, message),
        retry: retryOptions,
        onDead: (work, error) => {
          stats.dead++;
          core.emit('dead', { delivery: work.delivery, error, deadTopic });
        },
      }),
    );
  } else {
    chain.push(
      discard({
        retry: retryOptions,
        onDiscard: (work, error) => {
          stats.discarded++;
          core.emit('discarded', { delivery: work.delivery, error });
        },
      }),
    );
  }
  if (options.dedup) {
    chain.push(
      dedup(options.dedup, (work) => {
        stats.duplicates++;
        core.emit('duplicate', { delivery: work.delivery });
      }),
    );
  }
  const policies = chain.slice();
  chain.push(...options.middleware, timeout(watchdog));
  const errors = new WeakMap<Work, Error>();
  const failing = compose(policies, async function rethrow(work) {
    throw errors.get(work);
  });
  return {
    chain: compose(chain, inner),
    failed: (work, error) => {
      errors.set(work, error);
      return failing(work);
    },
  };
}

/**
 * One subscription to a channel and the loop that feeds its handler: at most `concurrency`
 * handlers run, up to `maxInFlight` deliveries are held (the subscription never hands out more),
 * and the rest waits at the broker — that is the backpressure.
 */
export class Consumer<T> {
  readonly stats: ConsumerStats;
  /** Handler time per message (decode and policies excluded). */
  readonly handlerTime = new LatencyHistogram();
  readonly #core: AppCore;
  readonly #options: ResolvedConsume;
  readonly #definition: MessageDefinition<T>;
  readonly #chain: Handler;
  readonly #failed: (work: Work, error: Error) => Promise<void>;
  readonly #watchdog: Watchdog;
  /** A ring, not an array: shift() on thousands of waiting deliveries must not move them all. */
  readonly #waiting = new Ring<Delivery>(64);
  readonly #active = new Set<WorkItem>();
  #subscription: Subscription | undefined;
  #idle: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #forced = false;
  readonly #handler: MessageHandler<T>;
  /**
   * No dedup and no user middleware: the policies (retry, dead-letter, timeout) only matter when
   * a handler fails, so a message that succeeds skips the composed chain and its per-message
   * promises (see #runFast). Failures take the same policy chain as before.
   */
  readonly #fast: boolean;

  constructor(core: AppCore, definition: MessageDefinition<T>, options: ResolvedConsume, handler: MessageHandler<T>) {
    this.#handler = handler;
    this.#fast = !options.dedup && options.middleware.length === 0;
    this.#core = core;
    this.#definition = definition;
    this.#options = options;
    this.stats = emptyStats(definition.topic, options.channel);
    this.#watchdog = new Watchdog(options.timeoutMs / 2, options.handlerTimeoutMs, this.#active, (work, error) => this.#expire(work as WorkItem, error));
    const timing = this.handlerTime;
    const channel = options.channel;
    const decodeAndHandle: Handler = async function handle(work: Work) {
      const d = work.delivery;
      work.value = definition.decode(d.body, d.headers);
      const started = performance.now();
      try {
        if (tracingActive()) {
          await processSpan(core.system, definition.topic, channel, d.id, d.headers, async () => handler(work.value as T, work.context));
        } else await handler(work.value as T, work.context);
      } finally {
        timing.observe((performance.now() - started) / 1000);
      }
    };
    ({ chain: this.#chain, failed: this.#failed } = buildChain(core, options, this.stats, this.#watchdog, decodeAndHandle));
  }

  get topic(): string {
    return this.#definition.topic;
  }
  get channel(): string {
    return this.#options.channel;
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
  }

  #onDelivery(delivery: Delivery): void {
    if (this.stats.running < this.#options.concurrency) this.#run(delivery);
    else {
      this.#waiting.push(delivery);
      this.stats.waiting = this.#waiting.length;
    }
  }

  #run(delivery: Delivery): void {
    this.stats.running++;
    const work = new WorkItem(delivery, this.#core.publish);
    this.#active.add(work);
    if (this.#fast && !tracingActive()) this.#runFast(work);
    else void this.#runChain(work);
  }

  async #runChain(work: WorkItem): Promise<void> {
    try {
      await this.#chain(work);
    } catch (error) {
      this.#broken(work, error);
    }
    if (!work.detached) this.#done(work);
  }

  /**
   * The chain's behaviour without the chain: decode, watch, run the handler; success acks at
   * once, any failure (decode, throw, rejection, finishing past the deadline) goes through the
   * same retry ▸ dead-letter steps the watchdog uses.
   */
  #runFast(work: WorkItem): void {
    const d = work.delivery;
    try {
      work.value = this.#definition.decode(d.body, d.headers);
    } catch (error) {
      this.#fail(work, error);
      return;
    }
    this.#watchdog.enter(work);
    // enter() stamped the start with performance.now(): one clock read serves both.
    const started = work.startedAt;
    let result: unknown;
    try {
      result = this.#handler(work.value as T, work);
    } catch (error) {
      this.#handled(work, started, error, true);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        () => this.#handled(work, started, undefined, false),
        (error: unknown) => this.#handled(work, started, error, true),
      );
    } else this.#handled(work, started, undefined, false);
  }

  #handled(work: WorkItem, started: number, error: unknown, failed: boolean): void {
    this.#watchdog.leave(work);
    this.handlerTime.observe((performance.now() - started) / 1000);
    // The watchdog already failed it and freed its slot: its late result does not count.
    if (work.detached) return;
    if (failed) this.#fail(work, error);
    else if (work.timedOut) this.#fail(work, new ConveyorError('ERR_TIMEOUT', 'handler finished after its deadline'));
    else this.#done(work);
  }

  #fail(work: WorkItem, error: unknown): void {
    this.#failed(work, error as Error).then(
      () => {
        if (!work.detached) this.#done(work);
      },
      (e: unknown) => {
        this.#broken(work, e);
        if (!work.detached) this.#done(work);
      },
    );
  }

  /** Only reached if the policy middleware itself failed: hand the message back, report it. */
  #broken(work: WorkItem, error: unknown): void {
    if (!work.settled) {
      work.settled = true;
      work.delivery.nack(0);
    }
    this.#core.emit('warning', { error: error as Error, where: `consumer ${this.topic}/${this.channel}` });
  }

  /** The watchdog gave up on a hung handler: abort it, settle its message, free its slot now. */
  #expire(work: WorkItem, error: Error): void {
    work.abort(error);
    work.detached = true;
    this.#failed(work, error).then(
      () => this.#done(work),
      (e: unknown) => {
        this.#broken(work, e);
        this.#done(work);
      },
    );
  }

  #done(work: WorkItem): void {
    if (!work.settled) {
      work.settled = true;
      work.delivery.ack();
      this.stats.processed++;
      if (this.#core.listening('processed')) this.#core.emit('processed', { delivery: work.delivery });
    }
    this.#active.delete(work);
    this.stats.running--;
    const next = this.#waiting.shift();
    if (next) {
      this.stats.waiting = this.#waiting.length;
      this.#run(next);
    } else if (this.stats.running === 0) this.#idle?.();
  }

  /**
   * Stop taking; finish what was handed out (running and waiting); then leave the channel.
   * `force` (also after a graceful close began) aborts running handlers, hands waiting
   * deliveries back, and leaves at once: the broker redelivers whatever was not acked.
   */
  close(options: { force?: boolean } = {}): Promise<void> {
    if (options.force && !this.#forced) {
      this.#forced = true;
      this.#subscription?.pause();
      const reason = new Error('app force-closed');
      for (const work of this.#active) work.abort(reason);
      this.#waiting.clear((d) => d.nack(0));
      this.stats.waiting = 0;
      const idle = this.#idle;
      this.#idle = undefined;
      idle?.();
    }
    this.#closing ??= (async () => {
      this.#subscription?.pause();
      if (!this.#forced && (this.stats.running > 0 || this.#waiting.length > 0)) {
        await new Promise<void>((resolve) => {
          this.#idle = resolve;
        });
      }
      this.#watchdog.stop();
      await this.#subscription?.close();
    })();
    return this.#closing;
  }
}
