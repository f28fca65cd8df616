import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, OutgoingMessage } from '../../core/message.ts';
import { refuseBinding, sendsBare, type SubscribeOptions, type Subscription, type Transport, type TransportFeatures } from '../../core/transport.ts';
import type { Engine } from '../../engine/engine.ts';
import type { EngineInput } from '../../engine/types.ts';
import { checkMaxInFlight, MemorySubscription } from './subscription.ts';

export interface MemoryTransportOptions {
  /** The scheme reported as `kind` (embedded:// reuses this class over a disk-backed engine). @default 'memory' */
  kind?: string;
  /** Whether the engine is durable (embedded:// with a disk backend). @default false */
  persistent?: boolean;
  /**
   * `?envelope=false`: publish bodies without headers, so NSQ clients of this engine's server
   * (src/server) get the bare body instead of the headers envelope. @default true
   */
  envelope?: boolean;
  /** Called once by `close()` after subscriptions and publishes are done (e.g. to close the engine). */
  onClose?: () => Promise<void>;
}

/**
 * The Transport contract over an in-process {@link Engine}: publish is `topic.publish` then
 * `topic.sync()`, a subscription is an engine consumer with RDY = maxInFlight.
 *
 * @example
 * const engine = new Engine();
 * const transport = new MemoryTransport(engine, { onClose: () => engine.close() });
 */
export class MemoryTransport implements Transport {
  readonly kind: string;
  readonly features: TransportFeatures;
  readonly engine: Engine;
  #subscriptions = new Set<MemorySubscription>();
  #pending = new Set<Promise<void>>();
  #closing: Promise<void> | undefined;
  #onClose: (() => Promise<void>) | undefined;
  readonly #envelope: boolean;
  readonly #forget = (sub: MemorySubscription): void => {
    this.#subscriptions.delete(sub);
  };

  constructor(engine: Engine, options: MemoryTransportOptions = {}) {
    this.engine = engine;
    this.kind = options.kind ?? 'memory';
    this.#onClose = options.onClose;
    this.#envelope = options.envelope ?? true;
    this.features = Object.freeze({
      delayedNack: true,
      delayedPublish: true,
      timeoutRedelivery: true,
      touch: true,
      persistent: options.persistent ?? false,
      guaranteedOrder: true,
      attemptsCounted: true,
      maxMessageBytes: engine.options.maxMsgSize,
    });
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    if (this.#closing !== undefined) throw new ConveyorError('ERR_CLOSED', `${this.kind}:// transport is closed`);
    if (!Array.isArray(messages)) throw new ConveyorError('ERR_BAD_OPTIONS', 'publish takes an array of messages');
    const t = this.engine.topic(topic);
    if (messages.length === 0) return;
    const inputs = new Array<EngineInput>(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      inputs[i] = { body: m?.body, headers: m && sendsBare(this.#envelope, m) ? undefined : m?.headers, key: m?.id, delayMs: m?.delayMs };
    }
    t.publish(inputs);
    const synced = t.sync();
    this.#pending.add(synced);
    try {
      await synced;
    } finally {
      this.#pending.delete(synced);
    }
  }

  async subscribe(
    topic: string,
    channel: string,
    options: SubscribeOptions,
    onMessage: (delivery: Delivery) => void,
  ): Promise<Subscription> {
    if (this.#closing !== undefined) throw new ConveyorError('ERR_CLOSED', `${this.kind}:// transport is closed`);
    if (typeof onMessage !== 'function') throw new ConveyorError('ERR_BAD_OPTIONS', 'onMessage must be a function');
    const maxRdy = this.engine.options.maxRdyCount;
    checkMaxInFlight(options?.maxInFlight, maxRdy);
    refuseBinding(this.kind, topic, channel, options.bind);
    const { timeoutMs } = options;
    if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs >= 1)) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `timeoutMs must be an integer >= 1 (ms), got ${JSON.stringify(timeoutMs)}`);
    }
    const ch = this.engine.topic(topic).channel(channel);
    const sub = new MemorySubscription(topic, channel, options.maxInFlight, maxRdy, onMessage, this.#forget);
    sub.consumer = ch.subscribe(sub, timeoutMs === undefined ? {} : { msgTimeoutMs: timeoutMs });
    this.#subscriptions.add(sub);
    sub.consumer.setReady(options.maxInFlight);
    return sub;
  }

  /** Closes subscriptions (their in-flight messages are requeued), waits for publishes, then `onClose`. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((s) => s.close()));
    await Promise.allSettled([...this.#pending]);
    await this.#onClose?.();
  }
}
