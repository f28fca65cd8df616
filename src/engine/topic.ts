import { ConveyorError } from '../core/errors.ts';
import { DiscardBackend, memoryBackendFactory } from './backend.ts';
import { Channel, type ChannelContext } from './channel.ts';
import type { IdGenerator } from './ids.ts';
import { Msg } from './message.ts';
import { assertValidName, isEphemeralName } from './names.ts';
import type { ResolvedEngineOptions } from './options.ts';
import { MessageQueue } from './queue.ts';
import type { EngineInput, EngineMessage, PeekResult, TopicStats, TopologyEvent } from './types.ts';

/** Most messages one pump moves from the topic queue to its channels before yielding. */
const PUMP_BUDGET = 8192;

/** What a topic needs from its engine. */
export interface TopicContext {
  readonly options: ResolvedEngineOptions;
  readonly ids: IdGenerator;
  nextConsumerId(): number;
  /** An `#ephemeral` topic lost its last channel: the engine deletes it. */
  idle(topic: Topic): void;
  /** A channel of this topic came or went (see TopologyEvent). */
  changed(event: TopologyEvent): void;
}

/**
 * A topic (nsqd topic.go). Publishing is synchronous: while the topic has channels, is not paused
 * and has nothing queued, each message is copied to every channel at once (the first channel gets
 * the original object, the others a copy sharing the body). Otherwise messages wait in the topic's
 * own queue (memory, then backend) and are pumped, in order, once a channel exists or the topic is
 * unpaused. So the first channel of a topic receives what was published before it existed, and a
 * later channel only what is published after it.
 *
 * A backlog past one pump's budget moves only as fast as the roomiest channel's memory queue
 * empties (nsqd would write it all again into the channels' backends): the rest waits here, counted
 * in the channels' depth and peek, handed over before a new channel or an empty.
 */
export class Topic {
  readonly name: string;
  readonly ephemeral: boolean;
  #context: TopicContext;
  #queue: MessageQueue;
  #channels = new Map<string, Channel>();
  /** The channels as an array: fan-out iterates it on every message. */
  #list: Channel[] = [];
  #paused = false;
  #closed = false;
  #backendClosed = false;
  #pumpScheduled: NodeJS.Immediate | undefined;
  #messageCount = 0;
  #messageBytes = 0;
  /**
   * Topic-queue positions of messages pumped to the channels, not yet released: the topic's
   * backend may move its persisted read position (and delete segments) past a message only once
   * every channel's copy is as durable as the channels' sync makes it. Released by
   * {@link Topic.sync} and by the sync each pump asks for.
   */
  #moved: EngineMessage[] = [];
  /** The positions each channel sync under way releases when it is done. */
  readonly #settling = new Set<EngineMessage[]>();
  readonly #channelContext: ChannelContext;

  constructor(name: string, context: TopicContext) {
    this.name = name;
    this.ephemeral = isEphemeralName(name);
    this.#context = context;
    const { options } = context;
    const backend = this.ephemeral ? new DiscardBackend() : (options.backend ?? memoryBackendFactory)(name, undefined);
    const limit = this.ephemeral && options.memQueueSize === 0 ? options.maxRdyCount : options.memQueueSize;
    this.#queue = new MessageQueue(limit, backend);
    this.#channelContext = {
      options,
      nextConsumerId: () => context.nextConsumerId(),
      pulled: () => {
        if (this.#pumpScheduled === undefined && this.#queue.depth > 0) this.#pumpScheduled = setImmediate(() => this.#pump('room'));
      },
      held: () => this.#held(),
      peekHeld: (max) => this.#queue.peek(max),
      handOver: () => this.#pump('all'),
      idle: (channel) => {
        if (this.#channels.get(channel.name) !== channel) return;
        this.deleteChannel(channel.name).catch((err: unknown) => {
          process.emitWarning(`deleting ephemeral channel ${name}/${channel.name} failed: ${String(err)}`, 'ConveyorWarning');
        });
      },
    };
  }

  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Accepts a batch, all or nothing: every input is checked (body a Uint8Array of at most
   * maxMsgSize bytes, delayMs within maxReqTimeoutMs) before any is queued. Headers are kept by
   * reference and must not be changed afterwards.
   */
  publish(inputs: readonly EngineInput[]): void {
    if (this.#closed) throw new ConveyorError('ERR_CLOSED', `topic ${this.name} is deleted or closed`);
    if (!Array.isArray(inputs)) throw new ConveyorError('ERR_BAD_OPTIONS', 'publish takes an array of messages');
    const { maxMsgSize, maxReqTimeoutMs } = this.#context.options;
    const n = inputs.length;
    for (let i = 0; i < n; i++) {
      const input = inputs[i]!;
      const body = input?.body;
      if (!(body instanceof Uint8Array)) {
        throw new ConveyorError('ERR_BAD_OPTIONS', `message ${i}: body must be a Uint8Array`);
      }
      if (body.length > maxMsgSize) {
        throw new ConveyorError('ERR_TOO_LARGE', `message ${i}: body of ${body.length} bytes is over maxMsgSize ${maxMsgSize}`, {
          details: { index: i, size: body.length, limit: maxMsgSize },
        });
      }
      const delay = input.delayMs;
      if (delay !== undefined && !(typeof delay === 'number' && delay >= 0 && delay <= maxReqTimeoutMs)) {
        throw new ConveyorError('ERR_BAD_OPTIONS', `message ${i}: delayMs must be from 0 to ${maxReqTimeoutMs}, got ${delay}`);
      }
      if (input.key !== undefined && typeof input.key !== 'string') {
        throw new ConveyorError('ERR_BAD_OPTIONS', `message ${i}: key must be a string`);
      }
    }
    const now = Date.now();
    const ids = this.#context.ids;
    const direct = this.#list.length > 0 && !this.#paused && this.#queue.depth === 0;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const input = inputs[i]!;
      const delay = input.delayMs;
      const msg = new Msg(ids.next(), input.body, input.headers, input.key, now, 0, delay ? now + delay : 0);
      bytes += input.body.length;
      if (direct) this.#fanOut(msg, now);
      else this.#queue.put(msg);
    }
    this.#messageCount += n;
    this.#messageBytes += bytes;
    if (direct) for (const channel of this.#list) channel.schedule();
  }

  /**
   * Resolves once everything published so far is as durable as the backends make it. Channels
   * first, the topic queue last: were the topic's read position written first, a crash before
   * the channels' flush would lose what the pump had moved (issue 14).
   */
  sync(): Promise<void> {
    if (this.#list.length === 0 && this.#moved.length === 0) return this.#queue.backend.sync();
    return this.#settle().then(() => this.#queue.backend.sync());
  }

  /** Gets or creates a channel. The first channel of a topic receives what the topic kept. */
  channel(name: string): Channel {
    const existing = this.#channels.get(name);
    if (existing !== undefined) return existing;
    assertValidName('channel', name);
    if (this.#closed) throw new ConveyorError('ERR_CLOSED', `topic ${this.name} is deleted or closed`);
    const ephemeral = isEphemeralName(name);
    const { options } = this.#context;
    const backend = ephemeral ? new DiscardBackend() : (options.backend ?? memoryBackendFactory)(this.name, name);
    const channel = new Channel(this.name, name, ephemeral, backend, this.#channelContext);
    // What the pump held back belongs to the channels that exist now, not to this one.
    if (this.#list.length > 0) this.#pump('all');
    this.#channels.set(name, channel);
    this.#list = [...this.#channels.values()];
    this.#context.changed({ topic: this.name, channel: name, removed: false });
    if (this.#list.length === 1) this.#pump();
    return channel;
  }

  getChannel(name: string): Channel | undefined {
    return this.#channels.get(name);
  }

  channels(): Channel[] {
    return [...this.#list];
  }

  /** Deletes a channel and its data; false if there is none by that name. */
  async deleteChannel(name: string): Promise<boolean> {
    const channel = this.#channels.get(name);
    if (channel === undefined) return false;
    this.#channels.delete(name);
    this.#list = [...this.#channels.values()];
    this.#context.changed({ topic: this.name, channel: name, removed: true });
    if (this.ephemeral && this.#list.length === 0) this.#context.idle(this);
    await channel.delete();
    return true;
  }

  /** Paused: publishes are accepted and kept in the topic queue, nothing reaches the channels. */
  pause(): void {
    this.#paused = true;
  }

  unpause(): void {
    this.#paused = false;
    this.#pump();
  }

  /** What the topic holds for channels it does not have yet (or while paused), none taken. */
  peek(max: number): PeekResult {
    return this.#queue.peek(Math.max(0, Math.floor(max)));
  }

  /** Drops what the topic itself holds (not what its channels hold), as nsqd's topic empty. */
  empty(): void {
    // What the pump held back is the channels' already: they get it first (see #pump).
    this.#pump('all');
    this.#queue.empty();
  }

  /**
   * Messages the pump held back for the channels (the topic has channels and is not paused): they
   * count in each channel's depth, as they would in nsqd's channel backends, not in the topic's.
   */
  #held(): number {
    return this.#paused || this.#closed || this.#list.length === 0 ? 0 : this.#queue.depth;
  }

  stats(): TopicStats {
    return {
      topic_name: this.name,
      depth: this.#queue.depth - this.#held(),
      backend_depth: this.#queue.backend.depth,
      message_count: this.#messageCount,
      message_bytes: this.#messageBytes,
      paused: this.#paused,
      channels: this.#list.map((c) => c.stats()),
    };
  }

  /** Called by the engine's scan timer. */
  scan(now: number): void {
    for (const channel of this.#list) channel.scan(now);
  }

  /** Deletes the topic, its channels and all their data. */
  async delete(): Promise<void> {
    if (this.#closed) return;
    this.#stop();
    const channels = this.#list;
    this.#channels.clear();
    this.#list = [];
    this.#queue.empty();
    this.#moved = [];
    this.#settling.clear();
    this.#backendClosed = true;
    for (const c of channels) this.#context.changed({ topic: this.name, channel: c.name, removed: true });
    await Promise.all([...channels.map((c) => c.delete()), this.#queue.backend.delete()]);
  }

  /**
   * Closes the topic keeping its data in the backends (see Channel.close). The channels close
   * (and persist) first, so the topic's last metadata may count what was pumped as done.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#stop();
    this.#queue.flushToBackend();
    await Promise.all(this.#list.map((c) => c.close()));
    // Closed channels have persisted their copies: everything pumped is done, whatever syncs are pending.
    const done = [...this.#settling].flat().concat(this.#moved);
    this.#settling.clear();
    this.#moved = [];
    this.#releaseNow(done);
    this.#backendClosed = true;
    await this.#queue.backend.close();
  }

  #stop(): void {
    this.#closed = true;
    if (this.#pumpScheduled !== undefined) clearImmediate(this.#pumpScheduled);
    this.#pumpScheduled = undefined;
  }

  /**
   * Syncs every channel, then releases the topic positions of what was pumped before the call.
   * On failure they are kept for the next sync: redelivered after a crash, never lost.
   */
  #settle(): Promise<void> {
    const moved = this.#moved;
    this.#moved = [];
    if (moved.length > 0) this.#settling.add(moved);
    return Promise.all(this.#list.map((c) => c.sync())).then(
      () => {
        if (this.#settling.delete(moved)) this.#releaseNow(moved);
      },
      (err: unknown) => {
        if (this.#settling.delete(moved)) this.#moved = moved.concat(this.#moved);
        throw err;
      },
    );
  }

  #releaseNow(positions: EngineMessage[]): void {
    // After close the backend's metadata is final; a late release would only delete segments it names.
    if (this.#backendClosed) return;
    const backend = this.#queue.backend;
    for (const position of positions) backend.release?.(position);
  }

  /** One message to every channel: the original to the first, copies to the rest. */
  #fanOut(msg: Msg, now: number): void {
    const list = this.#list;
    list[0]!.put(msg, now);
    for (let i = 1; i < list.length; i++) list[i]!.put(msg.copy(), now);
  }

  /** Moves queued messages to the channels (no consumer code runs here: channels deliver later). */
  #pump(mode: 'room' | 'budget' | 'all' = 'budget'): void {
    if (this.#pumpScheduled !== undefined) clearImmediate(this.#pumpScheduled);
    this.#pumpScheduled = undefined;
    if (this.#paused || this.#closed || this.#list.length === 0) return;
    const queue = this.#queue;
    const now = Date.now();
    // The first batch (a channel appeared, the topic was unpaused) goes at once, as it always did.
    // The rest of a backlog goes no further than the roomiest channel keeps in memory: past that
    // the messages would be packed into its backend only to be unpacked again, while here they wait
    // for the channels' next drain (which calls `pulled`) just as well. A slower channel still
    // takes its share into its backend, so a slow channel does not hold back a fast one.
    let budget = mode === 'all' ? Number.POSITIVE_INFINITY : PUMP_BUDGET;
    if (mode === 'room') {
      budget = 0;
      for (const channel of this.#list) budget = Math.max(budget, channel.room);
      budget = Math.min(budget, PUMP_BUDGET);
    }
    let moved = 0;
    while (moved < budget) {
      const msg = queue.shift();
      if (msg === undefined) break;
      // The topic's backend position is done once every channel has its copy; the channels'
      // copies must not carry it.
      const source = msg.source;
      msg.source = undefined;
      this.#fanOut(msg, now);
      if (source !== undefined && queue.backend.release !== undefined) this.#moved.push(source);
      moved++;
    }
    if (moved > 0) for (const channel of this.#list) channel.schedule();
    // Without it, a backlog drained with no publish (after a restart) would hold every position.
    if (this.#moved.length > 0) {
      this.#settle().catch((err: unknown) => {
        process.emitWarning(`syncing the channels of topic ${this.name} failed: ${String(err)}`, 'ConveyorWarning');
      });
    }
    if (queue.depth > 0 && budget === PUMP_BUDGET) this.#pumpScheduled = setImmediate(() => this.#pump('room'));
  }
}

