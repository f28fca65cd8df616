/**
 * NSQ protocol V2, client side (nsqd `protocol_v2.go`, https://nsq.io/clients/tcp_protocol_spec.html).
 * Big-endian throughout.
 *
 *   client → nsqd, once:   "  V2"                                  (4-byte magic)
 *   command:               "NAME param param\n"                    (text line)
 *   command with body:     "NAME params\n" [size u32][body]        (IDENTIFY, PUB, DPUB)
 *   MPUB:                  "MPUB topic\n" [size u32][count u32] count × ([size u32][body])
 *   nsqd → client, frames: [size u32][type u32][data: size - 4]     type 0 response, 1 error, 2 message
 *   message data:          [timestamp i64 ns][attempts u16][id 16 ASCII][body]
 */
import { ConveyorError } from '../../core/errors.ts';

export const MAGIC_V2 = Buffer.from('  V2', 'latin1');
export const FRAME_RESPONSE = 0;
export const FRAME_ERROR = 1;
export const FRAME_MESSAGE = 2;

export const NOP = Buffer.from('NOP\n', 'latin1');
export const CLS = Buffer.from('CLS\n', 'latin1');

/** "IDENTIFY\n" [size u32][json]. */
export function identifyCommand(data: Record<string, unknown>): Buffer {
  return withBody('IDENTIFY\n', Buffer.from(JSON.stringify(data), 'utf8'));
}

export function subCommand(topic: string, channel: string): Buffer {
  return Buffer.from(`SUB ${topic} ${channel}\n`, 'latin1');
}

export function rdyCommand(count: number): Buffer {
  return Buffer.from(`RDY ${count}\n`, 'latin1');
}

/** "FIN <id>\n" written straight into a preallocated buffer: the hottest command. */
export function finCommand(id: string): Buffer {
  const out = Buffer.allocUnsafe(21);
  out.write('FIN ', 0, 'latin1');
  out.write(id, 4, 16, 'latin1');
  out[20] = 0x0a;
  return out;
}

/** "REQ <id> <timeout ms>\n". */
export function reqCommand(id: string, delayMs: number): Buffer {
  return Buffer.from(`REQ ${id} ${Math.max(0, Math.floor(delayMs))}\n`, 'latin1');
}

export function touchCommand(id: string): Buffer {
  return Buffer.from(`TOUCH ${id}\n`, 'latin1');
}

/** "PUB <topic>\n" [size u32][body]. */
export function pubCommand(topic: string, body: Uint8Array): Buffer {
  return withBody(`PUB ${topic}\n`, body);
}

/** "DPUB <topic> <defer ms>\n" [size u32][body]. */
export function dpubCommand(topic: string, delayMs: number, body: Uint8Array): Buffer {
  return withBody(`DPUB ${topic} ${Math.max(0, Math.floor(delayMs))}\n`, body);
}

/** "MPUB <topic>\n" [size u32][count u32] count × ([size u32][body]); size counts what follows it. */
export function mpubCommand(topic: string, bodies: readonly Uint8Array[], from = 0, to = bodies.length): Buffer {
  const head = `MPUB ${topic}\n`;
  let size = 4;
  for (let i = from; i < to; i++) size += 4 + bodies[i]!.length;
  const out = Buffer.allocUnsafe(head.length + 4 + size);
  let at = out.write(head, 0, 'latin1');
  at = out.writeUInt32BE(size, at);
  at = out.writeUInt32BE(to - from, at);
  for (let i = from; i < to; i++) {
    const body = bodies[i]!;
    at = out.writeUInt32BE(body.length, at);
    out.set(body, at);
    at += body.length;
  }
  return out;
}

function withBody(head: string, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(head.length + 4 + body.length);
  const at = out.write(head, 0, 'latin1');
  out.writeUInt32BE(body.length, at);
  out.set(body, at + 4);
  return out;
}

/** One NSQ message as read off a message frame (body is a view into the frame, not a copy). */
export interface WireMessage {
  /** 16 ASCII chars. */
  id: string;
  attempts: number;
  /** ms since the epoch (nsqd sends ns). */
  timestamp: number;
  body: Uint8Array;
}

export function decodeMessage(data: Buffer): WireMessage {
  if (data.length < 26) throw new ConveyorError('ERR_PROTOCOL', `NSQ message frame of ${data.length} bytes is shorter than its 26-byte header`);
  // ns as two u32 halves: exact enough for ms without a BigInt per message.
  const timestamp = Math.floor((data.readUInt32BE(0) * 4294967296 + data.readUInt32BE(4)) / 1e6);
  return {
    timestamp,
    attempts: data.readUInt16BE(8),
    id: data.toString('latin1', 10, 26),
    body: data.subarray(26),
  };
}

/**
 * Splits a byte stream into frames. A chunk holding whole frames is read in place; a frame that
 * straddles chunks is joined once, when all of it has arrived (not once per chunk).
 */
export class FrameReader {
  #pending: Buffer[] = [];
  #pendingLength = 0;
  /** Bytes the partial frame at the head of `#pending` needs in all, once its size is known. */
  #need = 0;
  #maxFrame: number;

  /** @param maxFrame largest frame accepted, in bytes; a bigger declared size is a protocol error. */
  constructor(maxFrame: number) {
    this.#maxFrame = maxFrame;
  }

  /** Feeds a chunk; calls `onFrame(type, data)` for each complete frame. */
  push(chunk: Buffer, onFrame: (type: number, data: Buffer) => void): void {
    let buf = chunk;
    if (this.#pendingLength > 0) {
      this.#pending.push(chunk);
      this.#pendingLength += chunk.length;
      if (this.#pendingLength < this.#need) return;
      buf = Buffer.concat(this.#pending, this.#pendingLength);
      this.#pending = [];
      this.#pendingLength = 0;
    }
    let at = 0;
    while (buf.length - at >= 4) {
      const size = buf.readUInt32BE(at);
      if (size < 4 || size > this.#maxFrame) {
        throw new ConveyorError('ERR_PROTOCOL', `NSQ frame declares ${size} bytes (limit ${this.#maxFrame})`);
      }
      if (buf.length - at < 4 + size) break;
      onFrame(buf.readUInt32BE(at + 4), buf.subarray(at + 8, at + 4 + size));
      at += 4 + size;
    }
    if (at < buf.length) {
      const rest = buf.subarray(at);
      this.#pending.push(rest);
      this.#pendingLength = rest.length;
      this.#need = rest.length >= 4 ? 4 + rest.readUInt32BE(0) : 4;
    }
  }
}
