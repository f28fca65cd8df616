/**
 * The default in-memory backend: what overflows a topic's or channel's memory queue (a backlog
 * nobody consumes yet) is kept as objects up to `objects` messages, and past that packed into
 * 256 KiB slabs. A packed message
 * then costs its bytes (~40 fixed + id + key + body) instead of ~570 bytes of heap (the message
 * object, two id strings, a headers object, a body view), and the garbage collector has nothing
 * to trace: 500,000 waiting 80-byte events take ~75 MB of slabs instead of ~330 MB of heap.
 *
 * Headers are the costly part to pack. Messages of one kind share all headers but the id, and the
 * id header usually equals the message's key: so headers are stored as an index into a small table
 * of templates (the headers without that id) plus a flag, and rebuilt on read with one spread.
 * Headers that match no template once the table is full (a traceparent per message) are stored
 * as JSON.
 *
 *   record: u32 length | f64 timestamp | f64 deferUntil | u16 attempts | 16 id (latin1, space-padded)
 *           | u16 key bytes | u8 key is ascii | key | u16 template (0xffff: none) | u8 flags
 *           | u32 json bytes | json | body
 */
import { HEADER, type Headers } from '../core/message.ts';
import { bytesView, Msg } from './message.ts';
import { Ring } from './ring.ts';
import type { BackendQueue, EngineMessage } from './types.ts';

const SLAB_BYTES = 256 * 1024;
const FIXED = 4 + 8 + 8 + 2 + 16 + 2 + 1 + 2 + 1 + 4;
const NO_TEMPLATE = 0xffff;
const MAX_TEMPLATES = 256;
const ID_IS_KEY = 1;
const RESOLVED: Promise<void> = Promise.resolve();
const decoder = new TextDecoder();

interface Slab {
  buf: Buffer;
  view: DataView;
  /** Bytes written. */
  end: number;
  /** Next record to read. */
  read: number;
}

export interface CompactMemoryOptions {
  /**
   * Messages kept as objects before packing starts: moving a message object between queues is
   * free, packing and unpacking one costs ~0.3 µs each way, so backlogs of this size or less
   * pay nothing. @default 65536
   */
  objects?: number;
}

export class CompactMemoryBackend implements BackendQueue {
  /** The older part of the queue, as objects; packed records are all newer than these. */
  readonly #objects = new Ring<EngineMessage>(16);
  readonly #maxObjects: number;
  readonly #slabs = new Ring<Slab>(4);
  #packed = 0;
  #tail: Slab | undefined;
  #closed = false;
  /** Header templates (headers without the id header), and the index of each by its JSON. */
  readonly #templates: Headers[] = [];
  readonly #templateIndex = new Map<string, number>();
  #lastTemplate = NO_TEMPLATE;

  constructor(options: CompactMemoryOptions = {}) {
    this.#maxObjects = options.objects ?? 65_536;
  }

  get depth(): number {
    return this.#objects.length + this.#packed;
  }
  /**
   * Up to `max` of the oldest waiting messages, none taken (the dashboard's peek): those still kept
   * as objects. Packed ones are all newer, so a peek that reaches them is shown partial.
   */
  peek(max: number): EngineMessage[] {
    return this.#objects.front(max);
  }


  put(message: EngineMessage): void {
    if (this.#closed) return;
    // FIFO across both parts: objects only while nothing is packed behind them.
    if (this.#packed === 0 && this.#objects.length < this.#maxObjects) {
      this.#objects.push(message);
      return;
    }
    this.#pack(message);
  }

  #pack(message: EngineMessage): void {
    const key = message.key;
    const headers = message.headers;
    let flags = 0;
    let template = NO_TEMPLATE;
    let json: string | undefined;
    if (headers !== undefined) {
      if (key !== undefined && headers[HEADER.id] === key) flags |= ID_IS_KEY;
      template = this.#templateOf(headers, flags);
      if (template === NO_TEMPLATE) {
        json = JSON.stringify(headers);
        flags = 0;
      }
    }
    const keyAscii = key === undefined || isShortAscii(key);
    const keyBytes = key === undefined ? 0 : keyAscii ? key.length : Buffer.byteLength(key, 'utf8');
    const jsonBytes = json === undefined ? 0 : Buffer.byteLength(json, 'utf8');
    const length = FIXED + keyBytes + jsonBytes + message.body.length;
    const slab = this.#room(length);
    const { buf, view } = slab;
    let at = slab.end;
    view.setUint32(at, length);
    view.setFloat64(at + 4, message.timestamp);
    view.setFloat64(at + 12, message.deferUntil ?? 0);
    view.setUint16(at + 20, Math.min(message.attempts, 0xffff));
    const id = message.id;
    for (let i = 0; i < 16; i++) buf[at + 22 + i] = i < id.length ? id.charCodeAt(i) : 32;
    view.setUint16(at + 38, keyBytes);
    buf[at + 40] = keyAscii ? 1 : 0;
    at += 41;
    if (key !== undefined) {
      if (keyAscii) for (let i = 0; i < keyBytes; i++) buf[at + i] = key.charCodeAt(i);
      else buf.write(key, at, keyBytes, 'utf8');
      at += keyBytes;
    }
    view.setUint16(at, template);
    buf[at + 2] = flags;
    view.setUint32(at + 3, jsonBytes);
    at += 7;
    if (json !== undefined) {
      buf.write(json, at, jsonBytes, 'utf8');
      at += jsonBytes;
    }
    buf.set(message.body, at);
    slab.end += length;
    this.#packed++;
  }

  read(): EngineMessage | undefined {
    if (this.#objects.length > 0) return this.#objects.shift();
    if (this.#packed === 0) return undefined;
    let slab = this.#slabs.peek()!;
    // A tail read to its end stays queued (writes may resume in it); once a new tail exists it goes.
    while (slab.read === slab.end) {
      this.#slabs.shift();
      slab = this.#slabs.peek()!;
    }
    const { buf, view } = slab;
    let at = slab.read;
    const length = view.getUint32(at);
    const end = at + length;
    const timestamp = view.getFloat64(at + 4);
    const deferUntil = view.getFloat64(at + 12);
    const attempts = view.getUint16(at + 20);
    const i = at + 22;
    const raw = String.fromCharCode(
      buf[i]!, buf[i + 1]!, buf[i + 2]!, buf[i + 3]!, buf[i + 4]!, buf[i + 5]!, buf[i + 6]!, buf[i + 7]!,
      buf[i + 8]!, buf[i + 9]!, buf[i + 10]!, buf[i + 11]!, buf[i + 12]!, buf[i + 13]!, buf[i + 14]!, buf[i + 15]!,
    );
    const id = raw.charCodeAt(15) === 32 ? raw.trimEnd() : raw;
    const keyBytes = view.getUint16(at + 38);
    const keyAscii = buf[at + 40] === 1;
    at += 41;
    let key: string | undefined;
    if (keyBytes > 0) {
      key = keyAscii ? latin1(buf, at, keyBytes) : decoder.decode(buf.subarray(at, at + keyBytes));
      at += keyBytes;
    }
    const template = view.getUint16(at);
    const flags = buf[at + 2]!;
    const jsonBytes = view.getUint32(at + 3);
    at += 7;
    let headers: Headers | undefined;
    if (template !== NO_TEMPLATE) {
      // Object.assign, not a spread: a spread copy of these dashed names given one more property
      // went to dictionary mode, ~1 µs a message; this stays a fast object, ~0.1 µs.
      headers = Object.assign({}, this.#templates[template]);
      if (flags & ID_IS_KEY) headers[HEADER.id] = key!;
    } else if (jsonBytes > 0) {
      headers = JSON.parse(decoder.decode(buf.subarray(at, at + jsonBytes))) as Headers;
      at += jsonBytes;
    }
    // A view into the slab, as the disk queue's bodies are into its read chunk: in flight that is
    // bounded by RDY, and a message deferred for long takes a copy (Msg.ownBody).
    const body = bytesView(buf, at, end);
    slab.read = end;
    this.#packed--;
    if (slab.read === slab.end && slab !== this.#tail) this.#slabs.shift();
    return new Msg(id, body, headers, key, timestamp, attempts, deferUntil);
  }

  sync(): Promise<void> {
    return RESOLVED;
  }

  empty(): void {
    this.#objects.clear();
    this.#slabs.clear();
    this.#tail = undefined;
    this.#packed = 0;
  }

  close(): Promise<void> {
    this.#closed = true;
    this.empty();
    return RESOLVED;
  }

  delete(): Promise<void> {
    return this.close();
  }

  /** The tail slab with `length` bytes free, starting a new one when it is full. */
  #room(length: number): Slab {
    const tail = this.#tail;
    if (tail !== undefined) {
      // Everything read: start the tail over instead of allocating.
      if (this.#packed === 0 && length <= tail.buf.length) tail.read = tail.end = 0;
      if (tail.end + length <= tail.buf.length) return tail;
    }
    const buf = Buffer.allocUnsafe(Math.max(SLAB_BYTES, length));
    const slab: Slab = { buf, view: new DataView(buf.buffer, buf.byteOffset, buf.length), end: 0, read: 0 };
    this.#slabs.push(slab);
    this.#tail = slab;
    return slab;
  }

  /** The template index for these headers (without the id header when `flags` says it is the key), or NO_TEMPLATE. */
  #templateOf(headers: Headers, flags: number): number {
    const last = this.#lastTemplate;
    if (last !== NO_TEMPLATE && sameHeaders(this.#templates[last]!, headers, flags)) return last;
    const rest: Headers = {};
    for (const name in headers) if (!(flags & ID_IS_KEY) || name !== HEADER.id) rest[name] = headers[name]!;
    const text = JSON.stringify(rest);
    let index = this.#templateIndex.get(text);
    if (index === undefined) {
      if (this.#templates.length >= MAX_TEMPLATES) return NO_TEMPLATE;
      index = this.#templates.length;
      this.#templates.push(rest);
      this.#templateIndex.set(text, index);
    }
    this.#lastTemplate = index;
    return index;
  }
}

/** `headers` equals `template` plus (when flagged) the id header. */
function sameHeaders(template: Headers, headers: Headers, flags: number): boolean {
  let count = 0;
  for (const name in headers) {
    if (flags & ID_IS_KEY && name === HEADER.id) continue;
    if (template[name] !== headers[name]) return false;
    count++;
  }
  for (const _ in template) count--;
  return count === 0;
}

function isShortAscii(s: string): boolean {
  if (s.length > 64) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

/** 16 chars (the runtime's ids) from char codes, as the disk queue reads ids; others through C++. */
function latin1(buf: Buffer, at: number, n: number): string {
  if (n !== 16) return buf.toString('latin1', at, at + n);
  return String.fromCharCode(
    buf[at]!, buf[at + 1]!, buf[at + 2]!, buf[at + 3]!, buf[at + 4]!, buf[at + 5]!, buf[at + 6]!, buf[at + 7]!,
    buf[at + 8]!, buf[at + 9]!, buf[at + 10]!, buf[at + 11]!, buf[at + 12]!, buf[at + 13]!, buf[at + 14]!, buf[at + 15]!,
  );
}
