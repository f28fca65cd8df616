/**
 * What travels: bytes and string headers. Typed values live a layer up (schema.ts);
 * transports only ever see these shapes.
 */

/** Header names are lower-case ASCII; values are strings. Engines map them onto their own
 * headers (AMQP properties, NATS headers, Kafka record headers, MQTT user properties, ...). */
export type Headers = Record<string, string>;

/** Header names Conveyor itself sets and reads. Everything else is the application's. */
export const HEADER = {
  /** Codec of the body: application/cbor (default), application/json, application/msgpack, application/octet-stream. */
  contentType: 'content-type',
  /** The logical message id set by the producer; stable across redeliveries and republishes. */
  id: 'conveyor-id',
  /** The message definition's name (defineMessage). */
  type: 'conveyor-type',
  /** The schema version the body was written with. */
  version: 'conveyor-version',
  /** Dead-letter: the error code, message, and where the message came from. */
  deadCode: 'conveyor-dead-code',
  deadReason: 'conveyor-dead-reason',
  deadTopic: 'conveyor-dead-topic',
  deadChannel: 'conveyor-dead-channel',
  deadAttempts: 'conveyor-dead-attempts',
  deadAt: 'conveyor-dead-at',
} as const;

/** A message handed to {@link Transport.publish}. */
export interface OutgoingMessage {
  /**
   * Logical id. The runtime always sets one (16 hex chars, like an NSQ message id); engines that
   * can dedup on it (NATS `Nats-Msg-Id`) do, the others carry it so that `Delivery.id` returns it.
   */
  id?: string;
  body: Uint8Array;
  headers?: Headers;
  /** Deliver no earlier than this many milliseconds from now (NSQ DPUB). Needs `features.delayedPublish`. */
  delayMs?: number;
}

/**
 * One delivery of a message to one consumer of a channel. At least once: the same message may
 * be delivered again (with `attempts + 1`) until some consumer acks it.
 *
 * Exactly one of `ack` / `nack` may take effect; later calls are ignored (and do not throw),
 * so that a timeout racing a handler cannot double-settle.
 */
export interface Delivery {
  /** The logical message id (the producer's, or the broker's when the producer set none). */
  readonly id: string;
  readonly topic: string;
  readonly channel: string;
  readonly body: Uint8Array;
  readonly headers: Readonly<Headers>;
  /** 1 on first delivery, +1 on every redelivery (nack or timeout). */
  readonly attempts: number;
  /** When the broker accepted the message, ms since the epoch. */
  readonly timestamp: number;
  /** Done: the broker forgets this message for this channel. */
  ack(): void;
  /** Not done: redeliver after `delayMs` (0 = as soon as possible). */
  nack(delayMs?: number): void;
  /** Still working: restart the in-flight timeout. A no-op where the engine has none. */
  touch(): void;
}
