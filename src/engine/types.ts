import type { Headers } from '../core/message.ts';

/**
 * The embedded engine's contract: NSQ's topic/channel model (nsqd's topic.go, channel.go) in
 * one process. The in-process `memory://` transport and the NSQ TCP/HTTP server
 * (src/server/) are both thin layers over it, so they share every semantic below.
 *
 * Hot path rules: publish and delivery are synchronous calls with no per-message promise,
 * timer or closure; timeouts are found by a periodic scan (nsqd's queueScanLoop idea), not
 * one timer per message.
 */

/** A message as the engine holds it. One object per message per channel (channels copy on fan-out). */
export interface EngineMessage {
  /** 16 ASCII chars (hex), unique in this engine: NSQ's MessageID, as sent on the wire. */
  readonly id: string;
  readonly body: Uint8Array;
  /** In-process headers (memory://). Over NSQ TCP the body is opaque and this is undefined. */
  readonly headers: Headers | undefined;
  /** The producer's logical id (OutgoingMessage.id), when it gave one. */
  readonly key: string | undefined;
  /** When the topic accepted it, ms since the epoch. */
  readonly timestamp: number;
  /** Deliveries so far, counting the current one (1 on first delivery). */
  attempts: number;
  /**
   * DPUB: not to be delivered before this time, ms since the epoch (absent or 0 = now). Set while a
   * deferred message waits in a topic queue (a topic with no channels yet, or paused); a backend
   * that persists messages should keep it.
   */
  deferUntil?: number;
}

/** What a publisher hands the engine. */
export interface EngineInput {
  body: Uint8Array;
  headers?: Headers;
  key?: string;
  /** Defer delivery by this many ms (DPUB). */
  delayMs?: number;
}

/**
 * Storage behind a topic or channel once its memory queue is full (nsqd's BackendQueue).
 * The core engine ships an in-memory one; src/engine/disk/ provides the disk queue and the
 * server chooses it with a data directory. `#ephemeral` channels use a discarding one.
 * Calls are synchronous: the disk queue buffers and flushes itself; durability waits use `sync()`.
 */
export interface BackendQueue {
  put(message: EngineMessage): void;
  /** The oldest message, removed from the queue, or undefined when empty. */
  read(): EngineMessage | undefined;
  readonly depth: number;
  /** Make everything put so far durable (fsync for disk); resolves when it is. */
  sync(): Promise<void>;
  /** Drop every message (topic/channel empty). */
  empty(): void;
  /** Release resources, keeping the data (restart picks it up). */
  close(): Promise<void>;
  /** Release resources and remove the data (topic/channel delete). */
  delete(): Promise<void>;
  /**
   * The engine is done with `message`, which came out of this queue's `read()`: a channel calls
   * it when the message is FINished (or dropped by empty/delete), a topic once the message is
   * copied to every channel. Durable disk queues advance their persisted read position only past
   * released messages, so that what was unread or in flight at a crash is delivered again.
   */
  release?(message: EngineMessage): void;
  /**
   * Up to `max` of the oldest messages, not removed (the dashboard's peek). Optional: a backend
   * without it (the disk queue) shows only what is in memory, and the peek says it is partial.
   */
  peek?(max: number): EngineMessage[];
}

/** Makes the backend queue of a topic (`channel` undefined) or a channel. */
export type BackendFactory = (topic: string, channel: string | undefined) => BackendQueue;

/**
 * One consumer attached to a channel (an NSQ client connection after SUB, or an in-process
 * subscription). The channel pushes to it while it has ready capacity.
 */
export interface ConsumerSink {
  /** Called synchronously for each message handed to this consumer. Must not throw. */
  deliver(message: EngineMessage): void;
  /**
   * The engine detached this consumer: its channel or topic was deleted, or the engine closed.
   * Its in-flight messages are gone from the channel (finish/requeue/touch now return false);
   * an NSQ server closes the connection, as nsqd does.
   */
  detached?(): void;
}

export interface ChannelConsumer {
  readonly id: number;
  /** RDY: how many unacked messages this consumer may hold. 0 stops delivery. */
  setReady(count: number): void;
  readonly inFlight: number;
  /** FIN. False if `id` is not in flight for this consumer (nsqd's E_FIN_FAILED). */
  finish(id: string): boolean;
  /** finish() with the id as the 16 bytes at bytes[at] (the server's FIN, without a string per id). */
  finishBytes?(bytes: Uint8Array, at: number): boolean;
  /** REQ with a delay in ms (0 = back of the queue now). False if not in flight for this consumer. */
  requeue(id: string, delayMs: number): boolean;
  /**
   * TOUCH: restart the message's in-flight timeout. False if not in flight for this consumer.
   * `timeoutMs` (a Conveyor extension, not in NSQ) sets this message's timeout from now instead of
   * the consumer's msgTimeoutMs. Either way the deadline never passes the delivery time plus the
   * engine's maxMsgTimeoutMs (nsqd caps TOUCH the same way).
   */
  touch(id: string, timeoutMs?: number): boolean;
  /** Leave the channel: its in-flight messages are requeued at once. */
  close(): void;
}

export interface ConsumerOptions {
  /** In-flight timeout for this consumer's messages, ms (NSQ IDENTIFY msg_timeout). Defaults to the engine's. */
  msgTimeoutMs?: number;
}

export interface ChannelStats {
  channel_name: string;
  depth: number;
  backend_depth: number;
  in_flight_count: number;
  deferred_count: number;
  message_count: number;
  requeue_count: number;
  timeout_count: number;
  client_count: number;
  paused: boolean;
  /**
   * Conveyor extension: messages an `#ephemeral` channel discarded because its memory queue was
   * full (nsqd's dummy backend drops them without counting). Always 0 for other channels.
   */
  dropped_count?: number;
}

/** What a channel's peek returns: the next messages in delivery order, none of them taken. */
export interface PeekResult {
  messages: EngineMessage[];
  /** True when more are queued than could be shown (a backend without peek, or past `max`). */
  partial: boolean;
}

/** One consumer of a channel as the dashboard lists it. */
export interface ConsumerInfo {
  id: number;
  ready: number;
  inFlight: number;
}

/**
 * A topic or channel came or went: what nsqd tells nsqlookupd (REGISTER / UNREGISTER), so that
 * consumers that know only nsqlookupd find the broker. A deleted topic reports its channels first.
 */
export interface TopologyEvent {
  readonly topic: string;
  /** Absent for the topic itself. */
  readonly channel?: string;
  readonly removed: boolean;
}

export interface TopicStats {
  topic_name: string;
  depth: number;
  backend_depth: number;
  message_count: number;
  message_bytes: number;
  paused: boolean;
  channels: ChannelStats[];
}
