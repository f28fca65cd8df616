import { encodeWithId, openWithId } from '../../core/envelope.ts';
import type { Headers, OutgoingMessage } from '../../core/message.ts';

/** Stream entry fields: b body, h headers (JSON), i id, t publish time (ms), a attempts. */
export function entryFields(m: OutgoingMessage, now: string, attempts: number): Array<string | Buffer> {
  const fields: Array<string | Buffer> = ['b', Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength), 't', now, 'a', String(attempts)];
  if (m.id) fields.push('i', m.id);
  if (m.headers && Object.keys(m.headers).length > 0) fields.push('h', JSON.stringify(m.headers));
  return fields;
}

/** A bare entry (`?envelope=false`): the body alone in field `b`, for readers that know nothing of Conveyor. */
export function bareFields(m: OutgoingMessage): Array<string | Buffer> {
  return ['b', Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength)];
}

/** A whole entry as one string (delayed-set members, retry-stream entries, Pub/Sub payloads). */
export function encodeMember(fields: Array<string | Buffer>): string {
  const out: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) {
    const v = fields[i + 1]!;
    out[fields[i] as string] = Buffer.isBuffer(v) ? v.toString('base64') : v;
  }
  // A nonce keeps two identical retries distinct as sorted-set members.
  out.n = Math.random().toString(36).slice(2);
  return JSON.stringify(out);
}

export interface Parsed {
  body: Uint8Array;
  headers: Headers;
  id: string | undefined;
  timestamp: number;
  attempts: number;
}

/**
 * Entry fields (flat Buffer array) → message parts; retry entries carry the whole entry in `m`.
 * With no `t` field (bare or foreign entries) the publish time is the entry id's, `<ms>-<seq>`.
 */
export function parseEntry(fields: Buffer[], entryId = ''): Parsed {
  const added = Number.parseInt(entryId, 10) || Date.now();
  const map = new Map<string, Buffer>();
  for (let i = 0; i < fields.length; i += 2) map.set(fields[i]!.toString(), fields[i + 1]!);
  const packed = map.get('m');
  if (packed) {
    const o = JSON.parse(packed.toString()) as Record<string, string>;
    return {
      body: Buffer.from(o.b ?? '', 'base64'),
      headers: o.h ? JSON.parse(o.h) : {},
      id: o.i,
      timestamp: Number(o.t) || Date.now(),
      attempts: Number(o.a) || 1,
    };
  }
  const b = map.get('b');
  if (b === undefined) return foreignEntry(map, added);
  const h = map.get('h');
  return {
    body: b,
    headers: h ? JSON.parse(h.toString()) : {},
    id: map.get('i')?.toString(),
    timestamp: Number(map.get('t')?.toString()) || added,
    attempts: Number(map.get('a')?.toString()) || 1,
  };
}


const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * An entry a foreign producer wrote with its own fields (redis-py's `xadd(key, {"user": "a",
 * "msg": "hi"})`): the fields as one JSON object, so any definition reads it as JSON. A field
 * that is not UTF-8 throws, and the caller hands the raw bytes on instead (to dead-letter).
 */
function foreignEntry(map: Map<string, Buffer>, added: number): Parsed {
  const o: Record<string, string> = {};
  for (const [k, v] of map) o[k] = utf8.decode(v);
  return {
    body: Buffer.from(JSON.stringify(o)),
    headers: { 'content-type': 'application/json' },
    id: undefined,
    timestamp: added,
    attempts: 1,
  };
}

/**
 * A Pub/Sub payload: the body in the headers envelope (the id as a header), or the bare body
 * when `envelope` is off, so subscribers that know nothing of Conveyor read it as it is.
 */
export function pubSubPayload(m: OutgoingMessage, envelope: boolean): Buffer {
  const bytes = envelope ? encodeWithId(m.body, m.headers, m.id) : m.body;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

let pubSubSeq = 0;

/** A Pub/Sub payload back into parts; one without the envelope (a foreign PUBLISH) is all body. */
export function parsePubSubPayload(payload: Buffer): { body: Uint8Array; headers: Headers; id: string; timestamp: number } {
  const { body, headers, id } = openWithId(payload);
  // Pub/Sub carries no publish time and delivers at once: receipt time is the publish time.
  return { body, headers, id: id ?? `pubsub-${process.pid}-${++pubSubSeq}`, timestamp: Date.now() };
}
