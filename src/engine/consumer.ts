import { ConveyorError } from '../core/errors.ts';
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
 * One consumer of a channel. In-flight messages live in a Map in deadline order: every message
 * gets the same timeout (this consumer's), so insertion order is deadline order, and a plain TOUCH
 * re-inserts at the end. The timeout scan then stops at the first live message: O(expired), not
 * O(in flight). Messages whose deadline breaks that order (TOUCH with its own timeout, or capped by
 * maxMsgTimeoutMs) go to a second map that is scanned in full; it stays small.
 *
 * The ordered map is keyed by a small integer read from the id (see idKey), not the id string: with
 * nsq's bench_reader driving the broker, string-keyed set/delete was a third of its CPU, since a
 * FIN's id is a fresh string to hash and compare. A lookup checks the whole id, so a key that two
 * in-flight ids share (not seen in practice) only sends the second to the string-keyed map.
 */
export class Consumer implements ChannelConsumer {
  readonly id: number;
  readonly sink: ConsumerSink;
  /** In-flight timeout of this consumer's messages, ms. */
  readonly timeoutMs: number;
  /** RDY. Read by the channel on every delivery, so a plain field. */
  ready = 0;
  /** Messages in flight, both maps. */
  count = 0;
  closed = false;
  #host: ConsumerHost;
  #ordered = new Map<number, Msg>();
  #custom: Map<string, Msg> | undefined;

  constructor(id: number, sink: ConsumerSink, timeoutMs: number, host: ConsumerHost) {
    this.id = id;
    this.sink = sink;
    this.timeoutMs = timeoutMs;
    this.#host = host;
  }

  get inFlight(): number {
    return this.count;
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
    this.#putOrdered(msg);
    this.count++;
    this.sink.deliver(msg);
  }

  finish(id: string): boolean {
    const msg = this.#take(id);
    if (msg === undefined) return false;
    this.#host.finished(msg);
    return true;
  }

  requeue(id: string, delayMs: number): boolean {
    const msg = this.#take(id);
    if (msg === undefined) return false;
    this.#host.requeued(msg, delayMs);
    return true;
  }

  touch(id: string, timeoutMs?: number): boolean {
    if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0)) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `touch timeoutMs must be a number >= 0, got ${JSON.stringify(timeoutMs)}`);
    }
    const msg = this.#remove(id);
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
    if (ordered) this.#putOrdered(msg);
    else (this.#custom ??= new Map()).set(id, msg);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#host.left(this);
  }

  /** Removes and returns the messages whose deadline is at or before `now` (undefined if none). */
  expired(now: number): Msg[] | undefined {
    let out: Msg[] | undefined;
    for (const [key, msg] of this.#ordered) {
      if (msg.deadline > now) break;
      this.#ordered.delete(key);
      (out ??= []).push(msg);
    }
    if (this.#custom !== undefined) {
      for (const msg of this.#custom.values()) {
        if (msg.deadline > now) continue;
        this.#custom.delete(msg.id);
        (out ??= []).push(msg);
      }
    }
    if (out !== undefined) this.count -= out.length;
    return out;
  }

  /** Removes and returns every in-flight message (consumer leaving, channel closing). */
  takeAll(): Msg[] {
    const out = [...this.#ordered.values()];
    if (this.#custom !== undefined) out.push(...this.#custom.values());
    this.#ordered.clear();
    this.#custom = undefined;
    this.count = 0;
    return out;
  }

  #take(id: string): Msg | undefined {
    const msg = this.#remove(id);
    if (msg !== undefined) this.count--;
    return msg;
  }

  /** Out of whichever map holds it (the count is the caller's). */
  #remove(id: string): Msg | undefined {
    const key = idKey(id);
    const msg = this.#ordered.get(key);
    if (msg !== undefined && msg.id === id) {
      this.#ordered.delete(key);
      return msg;
    }
    const other = this.#custom?.get(id);
    if (other !== undefined) this.#custom!.delete(id);
    return other;
  }

  #putOrdered(msg: Msg): void {
    const key = idKey(msg.id);
    // A key already taken by another in-flight id (or an id not of the engine's form): the
    // string-keyed map, scanned in full on timeouts, takes it.
    if (key < 0 || this.#ordered.has(key)) (this.#custom ??= new Map()).set(msg.id, msg);
    else this.#ordered.set(key, msg);
  }
}

/**
 * A small integer for an engine id (16 lower-case hex chars, src/engine/ids.ts): its last 7
 * digits, 28 bits of the sequence and the millisecond prefix, so V8 keeps it unboxed (a 52-bit
 * key was a heap number per message). Ids 2^28 apart share a key, which lookups detect by the
 * whole id. -1 for anything else, such as a FIN with a garbled id.
 */
export function idKey(id: string): number {
  if (id.length !== 16) return -1;
  let n = 0;
  for (let i = 9; i < 16; i++) {
    const c = id.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    n = (n << 4) | d;
  }
  return n;
}
