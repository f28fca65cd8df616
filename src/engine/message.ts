import type { Headers } from '../core/message.ts';
import type { EngineMessage } from './types.ts';

/**
 * The engine's own message object: the public {@link EngineMessage} fields plus the bookkeeping a
 * channel needs (deadline, deferral, where it came from). One class, fields always set in the same
 * order, so V8 keeps every message the same shape on the hot path.
 */
export class Msg implements EngineMessage {
  readonly id: string;
  /** Replaced only by ownBody(). */
  body: Uint8Array;
  readonly headers: Headers | undefined;
  readonly key: string | undefined;
  readonly timestamp: number;
  attempts: number;
  /** Deliver no earlier than this (ms since the epoch); 0 = now. */
  deferUntil: number;
  /** In flight: when it times out (ms since the epoch). */
  deadline: number;
  /** In flight: when it was handed to its consumer; TOUCH cannot extend past this + maxMsgTimeoutMs. */
  deliveredAt: number;
  /**
   * The object a backend's `read()` returned for this message, until it is released back to that
   * backend (FIN, drop, or put into the backend again). Undefined for messages that never left memory.
   */
  source: EngineMessage | undefined;
  /** In flight: the delivery's token in its consumer's InFlight (negative: own deadline); 0 when not in flight. */
  flight: number;
  /** In flight: idKey(id), kept for the in-flight table (-1: not of the engine's form). */
  flightKey: number;

  constructor(
    id: string,
    body: Uint8Array,
    headers: Headers | undefined,
    key: string | undefined,
    timestamp: number,
    attempts: number,
    deferUntil: number,
  ) {
    this.id = id;
    this.body = body;
    this.headers = headers;
    this.key = key;
    this.timestamp = timestamp;
    this.attempts = attempts;
    this.deferUntil = deferUntil;
    this.deadline = 0;
    this.deliveredAt = 0;
    this.source = undefined;
    this.flight = 0;
    this.flightKey = -1;
  }

  /**
   * Gives the message a buffer of its own when its body is a small view into a much larger one
   * (a disk queue's read chunk): a message that will wait a long time (deferred) must not keep
   * the whole chunk alive.
   */
  ownBody(): void {
    const body = this.body;
    if (body.buffer.byteLength > 2 * body.byteLength + 8192) this.body = body.slice();
  }

  /** A copy for another channel (fan-out); the body bytes and headers object are shared. */
  copy(): Msg {
    return new Msg(this.id, this.body, this.headers, this.key, this.timestamp, this.attempts, this.deferUntil);
  }

  /** Wraps what a backend returned (a Msg we put there, or the disk queue's own object). */
  static fromBackend(read: EngineMessage): Msg {
    const msg =
      read instanceof Msg
        ? read
        : new Msg(read.id, read.body, read.headers, read.key, read.timestamp, read.attempts, read.deferUntil ?? 0);
    msg.source = read;
    return msg;
  }
}

/** A plain Uint8Array over bytes[start, end): no copy, and never a Buffer (see server/bodies.ts for why). */
export function bytesView(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start);
}
