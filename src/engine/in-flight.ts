import type { Msg } from './message.ts';

const MIN_SLOTS = 64;
const MIN_ORDER = 64;
/**
 * Delivery tokens, unique in the process: a message timed out by one consumer and delivered to
 * another must not look live in the first one's FIFO.
 */
let lastToken = 0;

/**
 * One consumer's in-flight messages: found by id (FIN, REQ, TOUCH) and walked in deadline order
 * (timeouts). Under nsq's bench_reader this is touched twice per message, so it avoids what made a
 * Map slow there: hashing a fresh id string per FIN, and rehashing a table that is always being
 * added to at one end and deleted from at the other.
 *
 * Finding: a direct-mapped table indexed by the id's key (idKey: its last 7 hex digits, which for
 * the engine's sequential ids differ between any two messages delivered close together), at least
 * twice as large as the count. A message whose slot is taken, or whose id is not of the engine's
 * form, goes to a string-keyed Map instead. Every lookup checks the whole id.
 *
 * Deadline order: every message delivered with the consumer's own timeout is appended to a FIFO,
 * whose order is then deadline order; a timeout scan stops at the first live message, O(expired).
 * Removing a message does not touch the FIFO: each entry carries the delivery's token and counts
 * only while the message still carries it (`Msg.flight`), and stale entries are dropped as they
 * reach the head, or all at once when they outnumber the live ones. Messages with a deadline of
 * their own (TOUCH with a timeout, or capped by maxMsgTimeoutMs) sit in a set scanned in full.
 */
export class InFlight {
  count = 0;
  #slots: (Msg | undefined)[] = new Array(MIN_SLOTS);
  #mask = MIN_SLOTS - 1;
  #spill: Map<string, Msg> | undefined;
  #custom: Set<Msg> | undefined;
  /** The FIFO: a ring of messages and the token each was appended with. */
  #order: (Msg | undefined)[] = new Array(MIN_ORDER);
  #tokens: number[] = new Array<number>(MIN_ORDER).fill(0);
  #head = 0;
  #length = 0;

  /** Entries in the deadline FIFO, stale ones included (bounded by twice the count, plus slack). */
  get tracked(): number {
    return this.#length;
  }

  /** Adds a message delivered now; `ordered` when its deadline is the consumer's usual one. */
  add(msg: Msg, ordered: boolean): void {
    if (this.count * 2 >= this.#slots.length) this.#growSlots();
    this.count++;
    const key = idKey(msg.id);
    msg.flightKey = key;
    const at = key & this.#mask;
    if (key >= 0 && this.#slots[at] === undefined) this.#slots[at] = msg;
    else (this.#spill ??= new Map()).set(msg.id, msg);
    this.#track(msg, ordered);
  }

  /** A new deadline for a message in flight (TOUCH): it moves to the end of the order. */
  retrack(msg: Msg, ordered: boolean): void {
    this.#custom?.delete(msg);
    this.#track(msg, ordered);
  }

  /** The in-flight message with this id, or undefined. */
  get(id: string): Msg | undefined {
    const key = idKey(id);
    if (key >= 0) {
      const msg = this.#slots[key & this.#mask];
      if (msg !== undefined && msg.id === id) return msg;
    }
    return this.#spill?.get(id);
  }

  /**
   * The in-flight message whose id is the 16 bytes at `bytes[at]`, or undefined: a FIN read off
   * the wire is looked up without making a string of it. Ids the table does not hold take the
   * string path.
   */
  getBytes(bytes: Uint8Array, at: number): Msg | undefined {
    const key = keyOfBytes(bytes, at);
    if (key >= 0) {
      const msg = this.#slots[key & this.#mask];
      // The key is the id's last 7 digits: the other 9 are left to compare.
      if (msg !== undefined && msg.flightKey === key && samePrefix(msg.id, bytes, at)) return msg;
    }
    if (this.#spill === undefined || this.#spill.size === 0) return undefined;
    return this.#spill.get(String.fromCharCode(...bytes.subarray(at, at + 16)));
  }

  /** Takes a message (from get/getBytes) out of flight. */
  remove(msg: Msg): void {
    const key = msg.flightKey;
    const at = key & this.#mask;
    if (key >= 0 && this.#slots[at] === msg) this.#slots[at] = undefined;
    else this.#spill?.delete(msg.id);
    if (msg.flight < 0) this.#custom!.delete(msg);
    msg.flight = 0;
    this.count--;
    // Keep the FIFO's head live, so that in-order finishing keeps it as short as the count.
    while (this.#length > 0 && this.#order[this.#head]!.flight !== this.#tokens[this.#head]) this.#shift();
  }

  /** Takes out and returns the messages whose deadline is at or before `now` (undefined if none). */
  expired(now: number): Msg[] | undefined {
    let out: Msg[] | undefined;
    while (this.#length > 0) {
      const msg = this.#order[this.#head]!;
      if (msg.flight === this.#tokens[this.#head]) {
        if (msg.deadline > now) break;
        (out ??= []).push(msg);
      }
      this.#shift();
    }
    if (this.#custom !== undefined) {
      for (const msg of this.#custom) if (msg.deadline <= now) (out ??= []).push(msg);
    }
    if (out !== undefined) for (const msg of out) this.remove(msg);
    return out;
  }

  /** Takes out and returns every message in flight. */
  takeAll(): Msg[] {
    const out: Msg[] = [];
    for (const msg of this.#slots) if (msg !== undefined) out.push(msg);
    if (this.#spill !== undefined) out.push(...this.#spill.values());
    for (const msg of out) msg.flight = 0;
    this.#slots = new Array(MIN_SLOTS);
    this.#mask = MIN_SLOTS - 1;
    this.#spill = undefined;
    this.#custom = undefined;
    this.#order = new Array(MIN_ORDER);
    this.#tokens = new Array<number>(MIN_ORDER).fill(0);
    this.#head = 0;
    this.#length = 0;
    this.count = 0;
    return out;
  }

  #track(msg: Msg, ordered: boolean): void {
    const token = ++lastToken;
    if (!ordered) {
      msg.flight = -token;
      (this.#custom ??= new Set()).add(msg);
      return;
    }
    msg.flight = token;
    if (this.#length === this.#order.length) this.#growOrder();
    const at = (this.#head + this.#length) & (this.#order.length - 1);
    this.#order[at] = msg;
    this.#tokens[at] = token;
    this.#length++;
  }

  #shift(): void {
    this.#order[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#order.length - 1);
    this.#length--;
  }

  /** Full: drop the stale entries if they are at least half, else double. */
  #growOrder(): void {
    const order = this.#order;
    const tokens = this.#tokens;
    const mask = order.length - 1;
    let live = 0;
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head + i) & mask;
      if (order[at]!.flight === tokens[at]) live++;
    }
    const size = live * 2 <= order.length ? order.length : order.length * 2;
    const nextOrder: (Msg | undefined)[] = new Array(size);
    const nextTokens = new Array<number>(size).fill(0);
    let n = 0;
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head + i) & mask;
      if (order[at]!.flight !== tokens[at]) continue;
      nextOrder[n] = order[at];
      nextTokens[n] = tokens[at]!;
      n++;
    }
    this.#order = nextOrder;
    this.#tokens = nextTokens;
    this.#head = 0;
    this.#length = n;
  }

  #growSlots(): void {
    const old = this.#slots;
    const size = old.length * 2;
    this.#slots = new Array(size);
    this.#mask = size - 1;
    for (const msg of old) {
      if (msg === undefined) continue;
      const at = msg.flightKey & this.#mask;
      if (this.#slots[at] === undefined) this.#slots[at] = msg;
      else (this.#spill ??= new Map()).set(msg.id, msg);
    }
  }
}

/** Value of a lower-case hex digit by char code, -1 for anything else (codes past 255 too). */
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;

function hexDigit(c: number): number {
  return c < 256 ? HEX_VALUE[c]! : -1;
}

/**
 * A small integer for an engine id (16 lower-case hex chars, src/engine/ids.ts): its last 7
 * digits, 28 bits of the sequence and the millisecond prefix, so V8 keeps it unboxed. -1 for
 * anything else, such as a FIN with a garbled id.
 */
export function idKey(id: string): number {
  if (id.length !== 16) return -1;
  let n = 0;
  for (let i = 9; i < 16; i++) {
    const d = hexDigit(id.charCodeAt(i));
    if (d < 0) return -1;
    n = (n << 4) | d;
  }
  return n;
}

/** idKey of the 16-byte id at bytes[at]. */
function keyOfBytes(bytes: Uint8Array, at: number): number {
  let n = 0;
  for (let i = at + 9; i < at + 16; i++) {
    const d = hexDigit(bytes[i]!);
    if (d < 0) return -1;
    n = (n << 4) | d;
  }
  return n;
}

/** Whether the first 9 chars of a 16-char id are the bytes at bytes[at]. */
function samePrefix(id: string, bytes: Uint8Array, at: number): boolean {
  for (let i = 0; i < 9; i++) if (id.charCodeAt(i) !== bytes[at + i]) return false;
  return true;
}
