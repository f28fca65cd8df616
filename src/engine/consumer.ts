import { ConveyorError } from '../core/errors.ts';
import { InFlight } from './in-flight.ts';
import type { Msg } from './message.ts';
import type { ChannelConsumer, ConsumerSink } from './types.ts';

/** What a consumer needs from its channel (implemented by Channel; kept narrow to avoid a cycle). */
export interface ConsumerHost {
  readonly maxMsgTimeoutMs: number;
  readonly maxRdyCount: number;
  finished(msg: Msg): void;
  requeued(msg: Msg, delayMs: number): void;
  readied(): void;
  left(consumer: Consumer): void;
}

/**
 * One consumer of a channel: its RDY and its in-flight messages (see InFlight for how they are
 * found by id and timed out in deadline order).
 */
export class Consumer implements ChannelConsumer {
  readonly id: number;
  readonly sink: ConsumerSink;
  /** In-flight timeout of this consumer's messages, ms. */
  readonly timeoutMs: number;
  /** RDY. Read by the channel on every delivery, so a plain field. */
  ready = 0;
  closed = false;
  #host: ConsumerHost;
  #inFlight = new InFlight();

  constructor(id: number, sink: ConsumerSink, timeoutMs: number, host: ConsumerHost) {
    this.id = id;
    this.sink = sink;
    this.timeoutMs = timeoutMs;
    this.#host = host;
  }

  /** Messages in flight. Read by the channel on every delivery. */
  get count(): number {
    return this.#inFlight.count;
  }

  get inFlight(): number {
    return this.#inFlight.count;
  }

  setReady(count: number): void {
    if (!Number.isSafeInteger(count) || count < 0 || count > this.#host.maxRdyCount) {
      throw new ConveyorError(
        'ERR_BAD_OPTIONS',
        `RDY must be an integer from 0 to ${this.#host.maxRdyCount}, got ${JSON.stringify(count)}`,
      );
    }
    const grew = count > this.ready;
    this.ready = count;
    if (grew && !this.closed) this.#host.readied();
  }

  /** The channel hands `msg` over: it is in flight for this consumer from now. */
  deliver(msg: Msg, now: number): void {
    msg.attempts++;
    msg.deliveredAt = now;
    msg.deadline = now + this.timeoutMs;
    this.#inFlight.add(msg, true);
    this.sink.deliver(msg);
  }

  finish(id: string): boolean {
    const msg = this.#inFlight.get(id);
    if (msg === undefined) return false;
    this.#inFlight.remove(msg);
    this.#host.finished(msg);
    return true;
  }

  /** finish() for an id given as the 16 bytes at bytes[at], as a FIN arrives off the wire. */
  finishBytes(bytes: Uint8Array, at: number): boolean {
    const msg = this.#inFlight.getBytes(bytes, at);
    if (msg === undefined) return false;
    this.#inFlight.remove(msg);
    this.#host.finished(msg);
    return true;
  }

  requeue(id: string, delayMs: number): boolean {
    const msg = this.#inFlight.get(id);
    if (msg === undefined) return false;
    this.#inFlight.remove(msg);
    this.#host.requeued(msg, delayMs);
    return true;
  }

  touch(id: string, timeoutMs?: number): boolean {
    if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0)) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `touch timeoutMs must be a number >= 0, got ${JSON.stringify(timeoutMs)}`);
    }
    const msg = this.#inFlight.get(id);
    if (msg === undefined) return false;
    const now = Date.now();
    const cap = msg.deliveredAt + this.#host.maxMsgTimeoutMs;
    let deadline = now + (timeoutMs ?? this.timeoutMs);
    let ordered = timeoutMs === undefined || timeoutMs === this.timeoutMs;
    if (deadline > cap) {
      deadline = cap;
      ordered = false;
    }
    msg.deadline = deadline;
    this.#inFlight.retrack(msg, ordered);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#host.left(this);
  }

  /** Removes and returns the messages whose deadline is at or before `now` (undefined if none). */
  expired(now: number): Msg[] | undefined {
    return this.#inFlight.expired(now);
  }

  /** Removes and returns every in-flight message (consumer leaving, channel closing). */
  takeAll(): Msg[] {
    return this.#inFlight.takeAll();
  }
}
