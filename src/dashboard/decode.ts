/**
 * A message body as the dashboard and `conveyor dlq` show it: CBOR, JSON and MessagePack decoded
 * to JSON, anything else (raw bytes, or a body its codec refuses) as hex, with the reason.
 */
import { codecFor } from '../core/codecs/index.ts';
import { openWithId } from '../core/envelope.ts';
import type { Headers } from '../core/message.ts';

/** Bodies past this are shown cut (the hex and the decoded value alike): a page is not a dump. */
export const PREVIEW_BYTES = 16 * 1024;

export interface ShownBody {
  /** The codec the content-type names (cbor when none), or raw. */
  format: string;
  size: number;
  /** The decoded value, made JSON-safe (bytes → {$hex}, bigint → string, Map → object). */
  json?: unknown;
  /** Hex of the first PREVIEW_BYTES, when the body is raw or did not decode. */
  hex?: string;
  /** Why a body that claims a codec did not decode. */
  error?: string;
  truncated?: boolean;
}

export function showBody(body: Uint8Array, headers: Readonly<Headers>): ShownBody {
  const contentType = headers['content-type'];
  const size = body.length;
  let format = 'cbor';
  try {
    const codec = codecFor(contentType);
    format = codecName(codec.contentType);
    if (format === 'raw') return { format, size, ...hexOf(body) };
    if (size > PREVIEW_BYTES) return { format, size, error: `body of ${size} bytes is past the ${PREVIEW_BYTES}-byte preview`, ...hexOf(body) };
    return { format, size, json: jsonSafe(codec.decode(body), 0) };
  } catch (error) {
    return { format, size, error: (error as Error).message, ...hexOf(body) };
  }
}

/** Engine messages published over NSQ TCP carry their headers inside the body (the envelope). */
export function openMessage(body: Uint8Array, headers: Headers | undefined): { body: Uint8Array; headers: Headers; id: string | undefined } {
  if (headers !== undefined) return { body, headers, id: headers['conveyor-id'] };
  return openWithId(body);
}

function codecName(contentType: string): string {
  if (contentType.includes('cbor')) return 'cbor';
  if (contentType.includes('json')) return 'json';
  if (contentType.includes('msgpack')) return 'msgpack';
  return 'raw';
}

function hexOf(body: Uint8Array): { hex: string; truncated?: boolean } {
  const cut = body.length > PREVIEW_BYTES;
  const hex = Buffer.from(body.buffer, body.byteOffset, Math.min(body.length, PREVIEW_BYTES)).toString('hex');
  return cut ? { hex, truncated: true } : { hex };
}

function jsonSafe(value: unknown, depth: number): unknown {
  if (depth > 64) return '…';
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === undefined) return null;
  if (value instanceof Uint8Array) return { $hex: Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex') };
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => jsonSafe(v, depth + 1));
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[String(k)] = jsonSafe(v, depth + 1);
    return out;
  }
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as object)) out[k] = jsonSafe(v, depth + 1);
    return out;
  }
  return String(value);
}
