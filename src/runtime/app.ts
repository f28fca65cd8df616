import { EventEmitter } from 'node:events';
import { connect } from '../connect.ts';
import { ConveyorError } from '../core/errors.ts';
import { newId } from '../core/id.ts';
import { HEADER, type OutgoingMessage } from '../core/message.ts';
import type { MessageDefinition } from '../core/schema.ts';
import type { Transport } from '../core/transport.ts';
import { type BatchHandler, BatchConsumer } from './batch-consumer.ts';
import { type AppCore, Consumer, type ConsumerStats } from './consumer.ts';
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
  #closing: Promise<void> | undefined;
  #forced = false;

  constructor(options: AppOptions = {}) {
    super();
    this.#options = { ...options };
    if (options.url !== undefined && options.transport !== undefined) {
      throw new ConveyorError('ERR_BAD_OPTIONS', 'app: give either url or transport, not both');
    }
    this.#publisher = new Publisher(() => this.transport(), resolvePublishTimeout(options.publishTimeoutMs));
    this.#core = {
      transport: () => this.transport(),
      publish: (definition, value, opts) => this.publish(definition, value, opts),
      publishRaw: (topic, message) => this.#publisher.publish(topic, message),
      emit: (event, ...args) => (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args),
      listening: (event) => this.listenerCount(event) > 0,
    };
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
    return this.#publisher.publish(definition.topic, message).then(() => id);
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
    return this.#publisher.send(definition.topic, messages).then(() => messages.map((m) => m.id!));
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
      return forced.then(() => this.#closing);
    }
    this.#closing ??= (async () => {
      await Promise.allSettled(this.#consumers.map((c) => c.close()));
      await this.#finish();
    })();
    return this.#closing;
  }

  async #finish(): Promise<void> {
    await this.#publisher.drain();
    if (this.#transport && (this.#options.ownsTransport ?? !this.#options.transport)) {
      const transport = await this.#transport.catch(() => undefined);
      await transport?.close();
    }
  }

  /**
   * Runs until SIGINT or SIGTERM: the first signal closes gracefully, a second forces.
   * Resolves once closed; the handlers are removed again.
   */
  run(): Promise<void> {
    return new Promise((resolve, reject) => {
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        this.emit('warning', { error: new Error(`received ${signal}`), where: signals === 1 ? 'shutdown' : 'forced shutdown' });
        const closing = this.close({ force: signals > 1 });
        if (signals === 1) closing.then(cleanup).then(resolve, reject);
      };
      const cleanup = () => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
  }
}
