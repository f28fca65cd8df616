/**
 * Message bodies the broker publishes are plain Uint8Array views, never Buffer slices: the
 * delivery path copies every body into a frame (TypedArray#set), and with bodies of both kinds in
 * one queue that copy ran several times slower (measured with nsq's bench_reader on an in-memory
 * backlog: 331k -> 376-418k msg/s once every body was a Uint8Array). The disk queue's bodies are
 * the same kind of view (engine/message.ts bytesView).
 */
import { bytesView } from '../engine/message.ts';

/** bytes[start, end) as a plain Uint8Array view, no copy. */
export const bodyView = bytesView;

/** A copy of `bytes` (a view of a read buffer the socket reuses), as a plain Uint8Array. */
export function bodyCopy(bytes: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(bytes.length); // Buffer's pool: cheaper than an ArrayBuffer per small body
  out.set(bytes);
  return bytesView(out, 0, out.length);
}
