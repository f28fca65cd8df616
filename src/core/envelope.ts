/**
 * Headers inside a body, for engines whose messages are bare bytes (NSQ). Layout:
 *
 *   "CVY" 0x01                    magic + format version (4 bytes)
 *   u16be count                   number of headers
 *   count × { u16be nameLen, name (utf8), u32be valueLen, value (utf8) }
 *   body                          the rest of the frame, unchanged
 *
 * A body that does not start with the magic is a plain body with no headers, so messages
 * from producers that know nothing of Conveyor (the seeds' Python services) read as they are.
 * Decoding checks every declared length against the bytes present: a lying length is an
 * ERR_DECODE, never an allocation.
 */
import { ConveyorError } from './errors.ts';
import { HEADER, type Headers } from './message.ts';

const MAGIC = [0x43, 0x56, 0x59, 0x01] as const;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function hasEnvelope(frame: Uint8Array): boolean {
  return (
    frame.length >= 6 && frame[0] === MAGIC[0] && frame[1] === MAGIC[1] && frame[2] === MAGIC[2] && frame[3] === MAGIC[3]
  );
}

/** Wraps body and headers; with no headers the body is returned as it is. */
export function encodeEnvelope(body: Uint8Array, headers: Headers | undefined): Uint8Array {
  if (!headers) return body;
  const entries = Object.entries(headers);
  if (entries.length === 0 && !hasEnvelope(body)) return body;
  const encoded = entries.map(([k, v]) => [encoder.encode(k), encoder.encode(v)] as const);
  let size = 6 + body.length;
  for (const [k, v] of encoded) size += 6 + k.length + v.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint16(4, encoded.length);
  let at = 6;
  for (const [k, v] of encoded) {
    if (k.length > 0xffff) throw new ConveyorError('ERR_ENCODE', 'header name longer than 65535 bytes');
    view.setUint16(at, k.length);
    out.set(k, at + 2);
    at += 2 + k.length;
    view.setUint32(at, v.length);
    out.set(v, at + 4);
    at += 4 + v.length;
  }
  out.set(body, at);
  return out;
}

/** Splits a frame into headers and body (headers undefined when the frame has no envelope). */
export function decodeEnvelope(frame: Uint8Array): { body: Uint8Array; headers: Headers | undefined } {
  if (!hasEnvelope(frame)) return { body: frame, headers: undefined };
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const count = view.getUint16(4);
  const headers: Headers = Object.create(null);
  let at = 6;
  try {
    for (let i = 0; i < count; i++) {
      const nameLen = need(frame, at, 2) && view.getUint16(at);
      need(frame, at + 2, nameLen);
      const name = decoder.decode(frame.subarray(at + 2, at + 2 + nameLen));
      at += 2 + nameLen;
      const valueLen = need(frame, at, 4) && view.getUint32(at);
      need(frame, at + 4, valueLen);
      headers[name] = decoder.decode(frame.subarray(at + 4, at + 4 + valueLen));
      at += 4 + valueLen;
    }
  } catch (cause) {
    if (cause instanceof ConveyorError) throw cause;
    throw new ConveyorError('ERR_DECODE', 'envelope header is not valid UTF-8', { cause });
  }
  // A plain object again, so callers can spread it; keys came from a null-prototype map.
  return { body: frame.subarray(at), headers: { ...headers } };
}

function need(frame: Uint8Array, at: number, length: number): true {
  if (at + length > frame.length) {
    throw new ConveyorError('ERR_DECODE', `envelope truncated: needs ${at + length} bytes, has ${frame.length}`);
  }
  return true;
}

/**
 * decodeEnvelope for a consumer: a body that starts with the magic but does not parse is taken
 * as a plain body. A foreign producer's bytes may start that way by chance, and delivering them
 * unchanged (the codec then fails them a layer up, to dead-letter, intact) beats failing a
 * message we cannot attribute.
 */
export function openEnvelope(frame: Uint8Array): { body: Uint8Array; headers: Headers | undefined } {
  try {
    return decodeEnvelope(frame);
  } catch (err) {
    if (err instanceof ConveyorError && err.code === 'ERR_DECODE') return { body: frame, headers: undefined };
    throw err;
  }
}

/**
 * A message for an engine whose messages are bare bytes: the body in the envelope, the logical
 * id (when there is one) carried as the `conveyor-id` header.
 */
export function encodeWithId(body: Uint8Array, headers: Headers | undefined, id: string | undefined): Uint8Array {
  return encodeEnvelope(body, id === undefined ? headers : { ...headers, [HEADER.id]: id });
}

/** openEnvelope, with the `conveyor-id` header taken out as the id (undefined when absent). */
export function openWithId(frame: Uint8Array): { body: Uint8Array; headers: Headers; id: string | undefined } {
  const opened = openEnvelope(frame);
  const headers = opened.headers ?? {};
  const id = headers[HEADER.id];
  if (id !== undefined) delete headers[HEADER.id];
  return { body: opened.body, headers, id };
}
