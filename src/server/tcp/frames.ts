/**
 * Frame encoding for protocol V2 (nsqd `internal/protocol` SendFramedResponse, nsqd `message.go`
 * WriteTo). Everything on the wire is big-endian:
 *
 *   frame:    [size u32][frame type u32][data: size - 4 bytes]
 *   type:     0 response, 1 error, 2 message
 *   message:  [timestamp i64 ns][attempts u16][id 16 ASCII bytes][body]
 */
export const FRAME_RESPONSE = 0;
export const FRAME_ERROR = 1;
export const FRAME_MESSAGE = 2;

/** size + type + timestamp + attempts + id: the bytes a message frame adds to its body. */
export const MESSAGE_FRAME_OVERHEAD = 4 + 4 + 8 + 2 + 16;

/** A complete response or error frame. Allocates; used for the rare non-message frames. */
export function encodeFrame(type: number, data: string | Uint8Array): Buffer {
  const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const out = Buffer.allocUnsafe(8 + payload.length);
  out.writeUInt32BE(4 + payload.length, 0);
  out.writeUInt32BE(type, 4);
  out.set(payload, 8);
  return out;
}

export const HEARTBEAT_FRAME = encodeFrame(FRAME_RESPONSE, '_heartbeat_');
export const OK_FRAME = encodeFrame(FRAME_RESPONSE, 'OK');
export const CLOSE_WAIT_FRAME = encodeFrame(FRAME_RESPONSE, 'CLOSE_WAIT');

/**
 * Writes a message frame at `at` in `out` (which must have room for
 * MESSAGE_FRAME_OVERHEAD + body.length bytes) and returns the offset after it.
 * The timestamp is ms since the epoch; the wire wants ns, which does not fit a double exactly,
 * so it is split into two u32 halves with integer-exact arithmetic instead of a BigInt per message.
 */
export function writeMessageFrame(
  out: Buffer,
  at: number,
  timestampMs: number,
  attempts: number,
  id: string,
  body: Uint8Array,
): number {
  // Byte stores rather than Buffer#writeUInt32BE and friends: their argument checks were a tenth
  // of a delivery's cost under nsq's bench_reader.
  const size = MESSAGE_FRAME_OVERHEAD - 4 + body.length;
  out[at] = size >>> 24;
  out[at + 1] = size >>> 16;
  out[at + 2] = size >>> 8;
  out[at + 3] = size;
  out[at + 4] = 0;
  out[at + 5] = 0;
  out[at + 6] = 0;
  out[at + 7] = FRAME_MESSAGE;
  writeNanos(out, at + 8, timestampMs);
  const a = Math.min(attempts, 0xffff);
  out[at + 16] = a >>> 8;
  out[at + 17] = a;
  if (id.length === 16) {
    // By hand: Buffer#write with an encoding is a call into C++, a tenth of a delivery's cost.
    for (let i = 0; i < 16; i++) out[at + 18 + i] = id.charCodeAt(i);
  } else out.write(id.padEnd(16, ' '), at + 18, 16, 'latin1');
  out.set(body, at + 34);
  return at + 34 + body.length;
}

const TWO_32 = 4294967296;
const TWO_21 = 2097152;
const TWO_11 = 2048;

/** ms → ns as [hi u32][lo u32]; every intermediate stays below 2^53. */
function writeNanos(out: Buffer, at: number, ms: number): void {
  const m = ms > 0 ? Math.floor(ms) : 0;
  const mHi = Math.floor(m / TWO_21);
  const mLo = m - mHi * TWO_21;
  const a = mHi * 1e6; // ns = a * 2^21 + b
  const b = mLo * 1e6;
  const aHi = Math.floor(a / TWO_11);
  const aLo = a - aHi * TWO_11;
  const bHi = Math.floor(b / TWO_32);
  let lo = aLo * TWO_21 + (b - bHi * TWO_32);
  let hi = aHi + bHi;
  if (lo >= TWO_32) {
    lo -= TWO_32;
    hi += 1;
  }
  out[at] = hi >>> 24;
  out[at + 1] = hi >>> 16;
  out[at + 2] = hi >>> 8;
  out[at + 3] = hi;
  out[at + 4] = lo >>> 24;
  out[at + 5] = lo >>> 16;
  out[at + 6] = lo >>> 8;
  out[at + 7] = lo;
}
