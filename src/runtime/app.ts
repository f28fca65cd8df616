import { EventEmitter } from 'node:events';
import { connect } from '../connect.ts';
import { ConveyorError } from '../core/errors.ts';
import { newId } from '../core/id.ts';
import { HEADER, type OutgoingMessage } from '../core/message.ts';
import type { MessageDefinition } from '../core/schema.ts';
import type { Transport } from '../core/transport.ts';
import { type AppMetricsSource, appFamilies, registryOf } from '../observability/metrics.ts';
import { publishSpan } from '../observability/tracing.ts';
import { type BatchHandler, BatchConsumer } from './batch-consumer.ts';
import { type AppCore, Consumer, type ConsumerStats } from './consumer.ts';
import { type DeadLetterLog, deadLetterLog } from './dead-letter-log.ts';
import { MemoryDedupStore } from './dedup-store.ts';
import type { AppEvents } from './events.ts';
import { type ConsumeBatchOptions, type ConsumeOptions, resolveConsumeOptions, resolvePublishTimeout } from './options.ts';
import { Publisher } from './publisher.ts';
import type { MessageHandler, PublishOptions } from './types.ts';

export interface AppOptions {
  /** Where to connect. @default 'memory://' */
  url?: string;
  /** A transport you made yourself; the app closes it on close unless `ownsTransport` is false. */
  transport?: Transport;
  /** @default true when the app connected the transport itself, false for one passed in */
  ownsTransport?: boolean;
  /**
   * Where dead letters (and discards, with `deadLetter: false`) are logged, rate-limited: the first
   * per dead topic and error code in each 10 s window in full, then a count. `false` for no log
   * (listen to `dead` and `discarded` yourself).
   * @default a line on stderr
   */
  deadLetterLog?: false | ((line: string) => void);
  /**
   * Deadline for one publish (or publishMany) to be confirmed, ms, connecting included; past it
   * the promise rejects with a retryable ERR_TIMEOUT (the broker may still take the message).
   * `Infinity` waits for the transport to give up on its own. @default 10000
   */
  publishTimeoutMs?: number;
}

/**
 * An application: publishes typed messages and runs consumers over one transport.
 *
 * @example
 * const pipeline = app({ url: 'memory://' });
 * await pipeline.consume(Frame, { channel: 'detector', concurrency: 8 }, async (frame, ctx) => {
 *   await ctx.publish(Detection, detect(frame));
 * });
 * await pipeline.publish(Frame, { camera: 'c1', ts: new Date(), score: 0.9, box: [0, 0, 1, 1] });
 * await pipeline.run(); // until SIGINT/SIGTERM
 */
export function app(options: AppOptions = {}): App {
  return new App(options);
}

export class App extends EventEmitter<AppEvents> {
  readonly #options: AppOptions;
  #transport: Promise<Transport> | undefined;
  readonly #publisher: Publisher;
  readonly #consumers: Array<Consumer<any> | BatchConsumer<any>> = [];
  readonly #core: AppCore;
  readonly #deadLog: DeadLetterLog | undefined;
  #closing: Promise<void> | undefined;
  #forced = false;
  /** Pending run() calls, told when a close starts (from a signal or from code). */
  readonly #runners = new Set<() => void>();
  readonly #published = new Map<string, number>();
  readonly #system: string;
  #registry: ReturnType<typeof registryOf> | undefined;

  constructor(options: AppOptions = {}) {
    super();
    this.#options = { ...options };
    if (options.url !== undefined && options.transport !== undefined) {
      throw new ConveyorError('ERR_BAD_OPTIONS', 'app: give either url or transport, not both');
    }
    this.#system = options.transport?.kind ?? /^([a-z][a-z0-9+.-]*):/i.exec(options.url ?? 'memory://')?.[1]?.toLowerCase() ?? 'memory';
    this.#publisher = new Publisher(() => this.transport(), resolvePublishTimeout(options.publishTimeoutMs));
    this.#core = {
      transport: () => this.transport(),
      publish: (definition, value, opts) => this.publish(definition, value, opts),
      publishRaw: (topic, message) => this.#publisher.publish(topic, message),
      emit: (event, ...args) => (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args),
      listening: (event) => this.listenerCount(event) > 0,
      system: this.#system,
    };
    // A dead letter is data the pipeline gave up on: never silent by default.
    if (options.deadLetterLog !== false) {
      const write = options.deadLetterLog ?? ((line: string) => process.stderr.write(`${line}\n`));
      const log = deadLetterLog(write);
      this.#deadLog = log;
      this.on('dead', (event) => log.dead(event));
      // Acked without a dead-letter copy: the log line is the only trace such a message leaves.
      this.on('discarded', (event) => log.dead({ ...event, deadTopic: 'nowhere (discarded: deadLetter is false)' }));
    }
  }

  /** The app's transport, connected on first use. */
  transport(): Promise<Transport> {
    if (!this.#transport) {
      this.#transport = this.#options.transport ? Promise.resolve(this.#options.transport) : connect(this.#options.url ?? 'memory://');
      // A failed connect is retried by the next call instead of being cached.
      this.#transport.catch(() => (this.#transport = undefined));
    }
    return this.#transport;
  }

  /**
   * Validates and encodes `value`, publishes it to the definition's topic, resolves with its id
   * once the broker confirmed. Publishes in the same tick travel as one batch.
   */
  publish<T>(definition: MessageDefinition<T>, value: T, options: PublishOptions = {}): Promise<string> {
    if (this.#closing) return Promise.reject(new ConveyorError('ERR_CLOSED', 'app is closing'));
    let message: OutgoingMessage;
    try {
      message = this.#encode(definition, value, options);
    } catch (error) {
      return Promise.reject(error);
    }
    const id = message.id!;
    const topic = definition.topic;
    const end = publishSpan(this.#system, topic, [message]);
    return this.#publisher.publish(topic, message).then(
      () => {
        end();
        this.#published.set(topic, (this.#published.get(topic) ?? 0) + 1);
        return id;
      },
      (error: unknown) => {
        end(error);
        throw error;
      },
    );
  }

  /** Publishes many values of one kind as one batch; resolves with their ids once all are confirmed. */
  publishMany<T>(definition: MessageDefinition<T>, values: readonly T[], options: Omit<PublishOptions, 'id'> = {}): Promise<string[]> {
    if (this.#closing) return Promise.reject(new ConveyorError('ERR_CLOSED', 'app is closing'));
    let messages: OutgoingMessage[];
    try {
      messages = values.map((v) => this.#encode(definition, v, options));
    } catch (error) {
      return Promise.reject(error);
    }
    const topic = definition.topic;
    const end = publishSpan(this.#system, topic, messages);
    return this.#publisher.send(topic, messages).then(
      () => {
        end();
        this.#published.set(topic, (this.#published.get(topic) ?? 0) + messages.length);
        return messages.map((m) => m.id!);
      },
      (error: unknown) => {
        end(error);
        throw error;
      },
    );
  }

  #encode<T>(definition: MessageDefinition<T>, value: T, options: PublishOptions): OutgoingMessage {
    const { body, headers } = definition.encode(value);
    const id = options.id ?? newId();
    headers[HEADER.id] = id;
    if (options.headers) Object.assign(headers, options.headers);
    const message: OutgoingMessage = { id, body, headers };
    if (options.delayMs !== undefined) message.delayMs = options.delayMs;
    return message;
  }

  /** Starts a consumer on `options.channel`; resolves once it is subscribed. */
  async consume<T>(definition: MessageDefinition<T>, options: ConsumeOptions, handler: MessageHandler<T>): Promise<Consumer<T>> {
    this.#assertOpen();
    const resolved = resolveConsumeOptions(definition.topic, options, () => new MemoryDedupStore());
    const consumer = new Consumer(this.#core, definition, resolved, handler);
    this.#consumers.push(consumer);
    await consumer.start();
    return consumer;
  }

  /** Starts a batching consumer (sinks): the handler gets arrays; acks follow its success. */
  async consumeBatch<T>(definition: MessageDefinition<T>, options: ConsumeBatchOptions, handler: BatchHandler<T>): Promise<BatchConsumer<T>> {
    this.#assertOpen();
    const resolved = resolveConsumeOptions(definition.topic, { ...options, batch: options.batch ?? {} }, () => new MemoryDedupStore());
    const consumer = new BatchConsumer(this.#core, definition, resolved, handler);
    this.#consumers.push(consumer);
    await consumer.start();
    return consumer;
  }

  #assertOpen(): void {
    if (this.#closing) throw new ConveyorError('ERR_CLOSED', 'app is closing');
  }

  stats(): ConsumerStats[] {
    return this.#consumers.map((c) => ({ ...c.stats }));
  }

  /** What /metrics reads: confirmed publishes per topic, and each consumer's counters and handler times. */
  metricsSource(): AppMetricsSource {
    return {
      published: () => this.#published,
      consumers: () => this.#consumers.map((c) => ({ ...c.stats, handler: c.handlerTime })),
    };
  }

  /**
   * The app's metrics in a prom-client Registry (one per app), to serve or to merge with your
   * own: `Registry.merge([app.metricsRegistry(), register])`.
   */
  metricsRegistry(): ReturnType<typeof registryOf> {
    this.#registry ??= registryOf(appFamilies(this.metricsSource()));
    return this.#registry;
  }

  /** Prometheus text of {@link metricsRegistry}. */
  metrics(): Promise<string> {
    return this.metricsRegistry().metrics();
  }

  /**
   * Graceful shutdown: stop taking, finish in-flight handlers, flush batches, ack, then close
   * the transport (which waits for pending publishes). `force` aborts handlers and returns
   * unacked messages to the broker at once; it may follow a graceful close already under way.
   */
  close(options: { force?: boolean } = {}): Promise<void> {
    if (options.force && !this.#forced) {
      this.#forced = true;
      const forced = Promise.allSettled(this.#consumers.map((c) => c.close({ force: true })));
      this.#closing ??= forced.then(() => this.#finish());
      this.#wakeRunners();
      return forced.then(() => this.#closing);
    }
    this.#closing ??= (async () => {
      await Promise.allSettled(this.#consumers.map((c) => c.close()));
      await this.#finish();
    })();
    this.#wakeRunners();
    return this.#closing;
  }

  #wakeRunners(): void {
    for (const wake of [...this.#runners]) wake();
  }

  async #finish(): Promise<void> {
    await this.#publisher.drain();
    this.#deadLog?.flush();
    if (this.#transport && (this.#options.ownsTransport ?? !this.#options.transport)) {
      const transport = await this.#transport.catch(() => undefined);
      await transport?.close();
    }
  }

  /**
   * Runs until SIGINT/SIGTERM or `close()`: the first signal closes gracefully, a second forces.
   * Keeps the process alive meanwhile (on memory:// or with idle consumers nothing else holds
   * Node's event loop, and an unsettled top-level `await` would exit with code 13). Resolves once
   * closed; the signal handlers are removed again.
   */
  run(): Promise<void> {
    if (this.#closing) return this.#closing;
    return new Promise((resolve, reject) => {
      let signals = 0;
      // A ref'd timer is the handle that keeps Node running; it does nothing when it fires.
      const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        this.emit('warning', { error: new Error(`received ${signal}`), where: signals === 1 ? 'shutdown' : 'forced shutdown' });
        // A failed close reaches the caller through #closing (see onClose); no unhandled rejection here.
        this.close({ force: signals > 1 }).catch(() => {});
      };
      const onClose = () => {
        this.#runners.delete(onClose);
        // Signal handlers stay until the close is done, so that a second signal forces instead of killing.
        const done = () => {
          clearInterval(keepAlive);
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        };
        this.#closing!.then(
          () => {
            done();
            resolve();
          },
          (error: unknown) => {
            done();
            reject(error);
          },
        );
      };
      this.#runners.add(onClose);
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
  }
}
