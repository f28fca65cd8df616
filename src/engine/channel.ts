import { ConveyorError } from '../core/errors.ts';
import { DiscardBackend } from './backend.ts';
import { Consumer, type ConsumerHost } from './consumer.ts';
import { DeferredHeap } from './heap.ts';
import type { Msg } from './message.ts';
import type { ResolvedEngineOptions } from './options.ts';
import { MessageQueue, releaseSource } from './queue.ts';
import type { BackendQueue, ChannelConsumer, ChannelStats, ConsumerInfo, ConsumerOptions, ConsumerSink, PeekResult } from './types.ts';

/**
 * Most messages one drain hands out before it yields to the event loop (and reschedules itself),
 * so that a consumer that acks synchronously cannot pin the process on a deep backlog.
 */
const DRAIN_BUDGET = 8192;

/** What a channel needs from its engine and topic. */
export interface ChannelContext {
  readonly options: ResolvedEngineOptions;
  nextConsumerId(): number;
  /** An `#ephemeral` channel lost its last consumer: the topic deletes it. */
  idle(channel: Channel): void;
  /** A drain took messages out of this channel's queue: the topic may pump what it held back. */
  pulled(channel: Channel): void;
  /** How many messages the topic's pump holds back for its channels (they come after this channel's queue). */
  held(): number;
  /** The front of what the topic holds back, none taken. */
  peekHeld(max: number): PeekResult;
  /** Pumps everything held back into the channels now (before an empty drops a channel's queue). */
  handOver(): void;
}

/**
 * A channel (nsqd channel.go): a queue (memory up to the high-water mark, then the backend), the
 * deferred heap (REQ with delay, DPUB) and its consumers with their in-flight messages.
 *
 * Delivery never happens inside the call that made it possible (publish, REQ, RDY, unpause):
 * those schedule one drain per channel with setImmediate, and the drain hands messages to
 * consumers that have RDY capacity, round robin. A FIN made while a drain runs (an ack inside the
 * consumer's handler) frees capacity that the running drain uses at once; this is the fast path.
 */
export class Channel implements ConsumerHost {
  readonly topicName: string;
  readonly name: string;
  readonly ephemeral: boolean;
  readonly maxMsgTimeoutMs: number;
  readonly maxRdyCount: number;
  #context: ChannelContext;
  #queue: MessageQueue;
  #deferred = new DeferredHeap();
  #consumers: Consumer[] = [];
  #cursor = 0;
  #paused = false;
  #draining = false;
  #scheduled: NodeJS.Immediate | undefined;
  #closed = false;
  #messageCount = 0;
  #requeueCount = 0;
  #timeoutCount = 0;
  readonly #runDrain = (): void => {
    this.#scheduled = undefined;
    this.#drain();
  };

  constructor(topicName: string, name: string, ephemeral: boolean, backend: BackendQueue, context: ChannelContext) {
    this.topicName = topicName;
    this.name = name;
    this.ephemeral = ephemeral;
    this.#context = context;
    const { memQueueSize, maxMsgTimeoutMs, maxRdyCount } = context.options;
    this.maxMsgTimeoutMs = maxMsgTimeoutMs;
    this.maxRdyCount = maxRdyCount;
    // mem-queue-size 0 means "everything through the backend"; an ephemeral channel has no real
    // backend, so it keeps up to a full RDY of messages instead of dropping all of them.
    const limit = ephemeral && memQueueSize === 0 ? maxRdyCount : memQueueSize;
    this.#queue = new MessageQueue(limit, backend);
  }

  get paused(): boolean {
    return this.#paused;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Attaches a consumer with RDY 0; it receives nothing until `setReady`. */
  subscribe(sink: ConsumerSink, options: ConsumerOptions = {}): ChannelConsumer {
    if (this.#closed) {
      throw new ConveyorError('ERR_CLOSED', `channel ${this.topicName}/${this.name} is deleted or closed`);
    }
    const { msgTimeoutMs } = options;
    if (msgTimeoutMs !== undefined && !(Number.isSafeInteger(msgTimeoutMs) && msgTimeoutMs >= 1)) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `msgTimeoutMs must be an integer >= 1, got ${JSON.stringify(msgTimeoutMs)}`);
    }
    const timeout = Math.min(msgTimeoutMs ?? this.#context.options.msgTimeoutMs, this.maxMsgTimeoutMs);
    const consumer = new Consumer(this.#context.nextConsumerId(), sink, timeout, this);
    this.#consumers.push(consumer);
    return consumer;
  }

  /** Paused: keeps accepting messages, delivers none. In-flight ones can still be settled. */
  pause(): void {
    this.#paused = true;
  }

  unpause(): void {
    this.#paused = false;
    this.schedule();
  }

  /**
   * Drops the queued messages (memory, backend and deferred). In-flight ones stay with their
   * consumers so that their FIN/REQ still answer; nsqd's Empty also forgets in-flight messages,
   * which makes the consumers' FIN fail and their RDY accounting jump, so we don't.
   */
  empty(): void {
    this.#context.handOver();
    this.#queue.empty();
    this.#deferred.clear((msg) => releaseSource(this.#queue.backend, msg));
  }

  stats(): ChannelStats {
    let inFlight = 0;
    for (const c of this.#consumers) inFlight += c.count;
    const backend = this.#queue.backend;
    return {
      channel_name: this.name,
      depth: this.#queue.depth + this.#context.held(),
      backend_depth: backend.depth,
      in_flight_count: inFlight,
      deferred_count: this.#deferred.size,
      message_count: this.#messageCount,
      requeue_count: this.#requeueCount,
      timeout_count: this.#timeoutCount,
      client_count: this.#consumers.length,
      paused: this.#paused,
      dropped_count: backend instanceof DiscardBackend ? backend.dropped : 0,
    };
  }

  /**
   * The next `max` messages this channel would deliver, none taken (nsqd cannot: nsq#375). Deferred
   * and in-flight messages are not in it; a disk backend shows only what is in memory (`partial`).
   */
  peek(max: number): PeekResult {
    const want = Math.max(0, Math.floor(max));
    const own = this.#queue.peek(want);
    if (own.messages.length >= want || this.#queue.depth > own.messages.length || this.#context.held() === 0) return own;
    // This channel's queue is all shown: what the topic holds back for it comes next.
    const more = this.#context.peekHeld(want - own.messages.length);
    for (const m of more.messages) own.messages.push(m);
    return { messages: own.messages, partial: more.partial };
  }

  /** The attached consumers with their RDY and in-flight counts (the dashboard's client list). */
  consumers(): ConsumerInfo[] {
    return this.#consumers.map((c) => ({ id: c.id, ready: c.ready, inFlight: c.count }));
  }

  /** How many messages the topic can pump into this channel before they spill into its backend. */
  get room(): number {
    return this.#queue.room;
  }

  /** Topic → channel: one message of the fan-out. The topic calls `schedule()` after its batch. */
  put(msg: Msg, now: number): void {
    this.#messageCount++;
    if (msg.deferUntil > now) this.#deferred.push(msg);
    else this.#queue.put(msg);
  }

  schedule(): void {
    if (this.#scheduled === undefined && !this.#closed) this.#scheduled = setImmediate(this.#runDrain);
  }

  /** The periodic scan: time out in-flight messages, release due deferred ones, then deliver. */
  scan(now: number): void {
    if (this.#closed) return;
    let moved = false;
    for (const consumer of this.#consumers) {
      const expired = consumer.expired(now);
      if (expired === undefined) continue;
      this.#timeoutCount += expired.length;
      for (const msg of expired) this.#queue.put(msg);
      moved = true;
    }
    let msg = this.#deferred.popDue(now);
    while (msg !== undefined) {
      msg.deferUntil = 0;
      this.#queue.put(msg);
      moved = true;
      msg = this.#deferred.popDue(now);
    }
    if (moved) this.#drain();
  }

  sync(): Promise<void> {
    return this.#queue.backend.sync();
  }

  // ConsumerHost: called by this channel's consumers.

  finished(msg: Msg): void {
    releaseSource(this.#queue.backend, msg);
    // Inside a drain the running loop uses the freed capacity; otherwise wake one up if needed.
    if (!this.#draining && this.#scheduled === undefined && this.#queue.depth > 0) this.schedule();
  }

  requeued(msg: Msg, delayMs: number): void {
    this.#requeueCount++;
    // nsqd clamps REQ timeouts into [0, max-req-timeout] rather than failing them.
    const delay = delayMs > 0 ? Math.min(delayMs, this.#context.options.maxReqTimeoutMs) : 0;
    if (delay > 0) {
      msg.deferUntil = Date.now() + delay;
      this.#deferred.push(msg);
    } else {
      msg.deferUntil = 0;
      this.#queue.put(msg);
      this.schedule();
    }
  }

  readied(): void {
    this.schedule();
  }

  left(consumer: Consumer): void {
    const i = this.#consumers.indexOf(consumer);
    if (i >= 0) this.#consumers.splice(i, 1);
    const inFlight = consumer.takeAll();
    this.#requeueCount += inFlight.length;
    for (const msg of inFlight) this.#queue.put(msg);
    if (this.ephemeral && this.#consumers.length === 0) this.#context.idle(this);
    else if (inFlight.length > 0) this.schedule();
  }

  /** Deletes the channel: drops every message (queued, deferred, in flight) and the backend's data. */
  delete(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const backend = this.#queue.backend;
    const drop = (msg: Msg) => releaseSource(backend, msg);
    for (const msg of this.#detach()) drop(msg);
    this.#queue.empty();
    this.#deferred.clear(drop);
    return backend.delete();
  }

  /**
   * Closes the channel keeping its data, as nsqd's flush on exit: what is in memory, deferred or in
   * flight goes into the backend, so a durable backend delivers it again after a restart.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const backend = this.#queue.backend;
    const keep = (msg: Msg) => {
      releaseSource(backend, msg);
      backend.put(msg);
    };
    const inFlight = this.#detach();
    this.#queue.flushToBackend();
    for (const msg of inFlight) keep(msg);
    this.#deferred.clear(keep);
    return backend.close();
  }

  /** Marks the channel closed and detaches every consumer, returning their in-flight messages. */
  #detach(): Msg[] {
    this.#closed = true;
    if (this.#scheduled !== undefined) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    const consumers = this.#consumers;
    this.#consumers = [];
    const inFlight: Msg[] = [];
    for (const consumer of consumers) {
      consumer.closed = true;
      for (const msg of consumer.takeAll()) inFlight.push(msg);
    }
    for (const consumer of consumers) consumer.sink.detached?.();
    return inFlight;
  }

  #drain(): void {
    if (this.#draining || this.#paused || this.#closed || this.#consumers.length === 0) return;
    this.#draining = true;
    const queue = this.#queue;
    const now = Date.now();
    let budget = DRAIN_BUDGET;
    try {
      while (budget > 0) {
        const consumer = this.#pick();
        if (consumer === undefined) break;
        const msg = queue.shift();
        if (msg === undefined) break;
        budget--;
        consumer.deliver(msg, now);
        if (this.#closed || this.#paused) break;
      }
    } finally {
      this.#draining = false;
    }
    if (budget === 0 && queue.depth > 0) this.schedule();
    if (budget < DRAIN_BUDGET) this.#context.pulled(this);
  }

  /** The next consumer with RDY capacity, round robin; undefined if none has any. */
  #pick(): Consumer | undefined {
    const consumers = this.#consumers;
    const n = consumers.length;
    if (n === 1) {
      const only = consumers[0]!;
      return only.count < only.ready ? only : undefined;
    }
    for (let tried = 0; tried < n; tried++) {
      let at = this.#cursor;
      if (at >= n) at = 0;
      this.#cursor = at + 1;
      const consumer = consumers[at]!;
      if (consumer.count < consumer.ready) return consumer;
    }
    return undefined;
  }
}
