import { ConveyorError } from './errors.ts';
import { type Delivery, HEADER, type OutgoingMessage } from './message.ts';
import type { ParsedUrl } from './url.ts';

/**
 * The contract every engine adapter implements (memory, nsq, amqp, redis, nats, mqtt, kafka).
 * It is deliberately small: a typed layer, retries, dead-letter and batching live in the runtime
 * and work the same over every transport. What an engine cannot do natively is emulated inside
 * its adapter, or declared missing in {@link TransportFeatures} (the conformance suite skips that
 * case and says why).
 *
 * Rules:
 * - `publish` resolves only once the broker holds every message of the call (its confirm). It
 *   rejects with a ConveyorError if any of them was not confirmed; callers may then publish the
 *   whole batch again (at least once, so duplicates are possible and `Delivery.id` is stable).
 * - `publish` may be called concurrently and from many places; adapters batch as they see fit.
 * - `subscribe` hands deliveries to `onMessage` synchronously, never more than `maxInFlight`
 *   unacked at once. `onMessage` must not throw; what it does with the delivery is its business.
 * - Every channel of a topic receives every message; the consumers of one channel share them.
 *   A channel is created by its first subscribe and sees messages published after that.
 * - `close` stops subscriptions (their unacked deliveries return to the broker for redelivery),
 *   waits for pending publishes to be confirmed or rejected, then releases connections. It is
 *   idempotent.
 * - An adapter owns its connection(s) and reconnects by itself; a publish made while it is down
 *   waits (bounded) or rejects with a retryable error; it is never silently dropped.
 */
export interface Transport {
  /** The URL scheme (memory, embedded, nsq, amqp, redis, nats, mqtt, kafka). */
  readonly kind: string;
  readonly features: TransportFeatures;
  publish(topic: string, messages: OutgoingMessage[]): Promise<void>;
  subscribe(
    topic: string,
    channel: string,
    options: SubscribeOptions,
    onMessage: (delivery: Delivery) => void,
  ): Promise<Subscription>;
  close(): Promise<void>;
}

export interface SubscribeOptions {
  /** Most unacked deliveries this subscription holds at once (NSQ RDY, AMQP prefetch, ...). */
  maxInFlight: number;
  /**
   * How long a delivery may stay unacked before the broker redelivers it, in ms. Engines without
   * a per-subscription timeout ignore it (see `features.timeoutRedelivery`).
   */
  timeoutMs?: number;
  /**
   * Names that already exist on the engine, for this subscription only: the same value forms as
   * the URL's `bind.<topic>=` and `bind.<topic>:<channel>=` (docs/interop.md has them per engine),
   * and taking precedence over them. An engine with nothing to bind, or a form it does not read,
   * rejects the subscribe with ERR_BAD_OPTIONS rather than ignore it.
   * @default none (the URL's bindings, else Conveyor's own names)
   */
  bind?: Binding;
}

/**
 * A subscription's binding to existing broker objects, e.g. `{ channel: 'mailbox' }` (amqp: consume
 * queue `mailbox` as is) or `{ topic: 'ORDERS/orders.eu.>' }` (nats: that stream and filter).
 */
export interface Binding {
  /** The topic's native name (amqp `<exchange>/<key>`, redis `<key>`, nats `<stream>/<subject>`, mqtt `<filter>`). */
  topic?: string;
  /** The channel's native source where the engine has one (amqp `<queue>`, nats `<durable consumer>`). */
  channel?: string;
}

export interface Subscription {
  /** Stop receiving new deliveries; the ones already handed out can still be acked, nacked, touched. */
  pause(): void;
  /** Receive again after `pause`. */
  resume(): void;
  /** Change the in-flight bound (backpressure); takes effect for the next deliveries. */
  setMaxInFlight(n: number): void;
  /** Leave the channel. Unacked deliveries go back to the broker for redelivery. */
  close(): Promise<void>;
}

/**
 * What an engine can do. The conformance suite reads these to decide which cases apply, and
 * the runtime to decide what to emulate. A `false` is a documented limitation, never a bug.
 */
export interface TransportFeatures {
  /** `nack(delayMs)` redelivers after the delay without blocking the rest of the channel. */
  delayedNack: boolean;
  /** `OutgoingMessage.delayMs` is honoured. */
  delayedPublish: boolean;
  /** An unacked delivery past `timeoutMs` is redelivered with attempts + 1. */
  timeoutRedelivery: boolean;
  /** `touch()` restarts the in-flight timeout. */
  touch: boolean;
  /** Messages survive a restart of the broker. */
  persistent: boolean;
  /** Consumers of one channel receive messages in publish order when there is one consumer. */
  guaranteedOrder: boolean;
  /** `attempts` is counted by the broker (else the adapter keeps it in a header). */
  attemptsCounted: boolean;
  /** Largest body accepted, in bytes; larger ones are rejected with ERR_TOO_LARGE before sending. */
  maxMessageBytes: number;
  /**
   * `SubscribeOptions.bind` is read. Without it the runtime refuses a consumer's `bind`
   * (ERR_BAD_OPTIONS) instead of letting an adapter that predates it ignore the binding.
   * @default false
   */
  bind?: boolean;
}

/** Options every adapter accepts besides its URL. Adapter-specific ones go in the URL's query. */
export interface ConnectOptions {
  /** Name reported to brokers that keep one (NSQ client_id, AMQP connection name, ...). */
  clientId?: string;
}

/**
 * Whether `?envelope=false` sends this message bare. A dead letter never is: its reason
 * (`conveyor-dead-*`) is the point of it, and its topic is Conveyor's own, not a foreign one.
 */
export function sendsBare(envelope: boolean, m: OutgoingMessage): boolean {
  return !envelope && m.headers?.[HEADER.deadCode] === undefined;
}

/**
 * For engines whose names are Conveyor's names (nsq, memory, embedded): a binding would be
 * silently meaningless there, so it is refused.
 */
export function refuseBinding(kind: string, topic: string, channel: string, bind: Binding | undefined): void {
  if (bind === undefined || (bind.topic === undefined && bind.channel === undefined)) return;
  throw new ConveyorError('ERR_BAD_OPTIONS', `${kind}:// subscribe ${topic}:${channel}: bind: ${kind}:// topics and channels have no other names to bind to`, {
    details: { bind },
  });
}

/** What an adapter module under src/transports/<engine>/index.ts exports. */
export type TransportFactory = (url: ParsedUrl, options: ConnectOptions) => Promise<Transport>;
