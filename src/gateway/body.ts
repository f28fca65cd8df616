/**
 * Request bodies for the gateway: read with a size limit and a deadline, parsed, bounded in depth,
 * and turned into messages — every failure an {@link HttpError} with the status the client sees,
 * so that nothing that parsed can fail later on the way out (issue 14: an untyped topic used to
 * re-encode the parsed value with JSON.stringify, which overflows the stack ~5,000 levels deep).
 */
import type { IncomingMessage } from 'node:http';
import type { Codec } from '../core/codecs/index.ts';
import { newId } from '../core/id.ts';
import { HEADER, type OutgoingMessage } from '../core/message.ts';
import type { MessageDefinition } from '../core/schema.ts';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type BodyType = 'json' | 'ndjson' | 'cbor';

/** The body type from a Content-Type header (none means JSON); anything else is a 415. */
export function bodyType(contentType: string | undefined): BodyType {
  const type = (contentType ?? 'application/json').split(';', 1)[0]!.trim().toLowerCase();
  if (type === 'application/json') return 'json';
  if (type === 'application/x-ndjson' || type === 'application/ndjson') return 'ndjson';
  if (type === 'application/cbor') return 'cbor';
  throw new HttpError(415, `unsupported content-type ${JSON.stringify(contentType)}: use application/json, application/cbor or application/x-ndjson`);
}

/**
 * Reads the body, counting bytes as they come. Past `max` it fails with 413, and if the whole body
 * is not in within `timeoutMs` with 408; either way it stops collecting but keeps the request
 * flowing (bytes discarded), so that the answer is not lost to a reset from unread bytes.
 */
export function readBody(req: IncomingMessage, max: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (error: HttpError) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.resume();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) return stop(new HttpError(413, `body is over the ${max}-byte limit`));
      chunks.push(chunk);
    };
    const timer = setTimeout(() => stop(new HttpError(408, `the body did not arrive within ${timeoutMs} ms`)), timeoutMs);
    req.on('data', onData);
    req.once('end', () => {
      clearTimeout(timer);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/**
 * True when valid JSON `text` nests arrays/objects deeper than `max`. Iterative: V8's JSON.parse
 * takes any depth, but JSON.stringify, schema validators and consumers recurse.
 */
export function jsonDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}

interface Parsed {
  value: unknown;
  /** Where in the body, for errors: '' or 'line N: '. */
  where: string;
  /** The JSON text as it came, passed through untouched on untyped topics. */
  json?: string;
}

function parseJson(text: string, maxDepth: number, where: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `${where}malformed JSON: ${(e as Error).message}`);
  }
  if (jsonDeeperThan(text, maxDepth)) throw new HttpError(400, `${where}JSON nested deeper than ${maxDepth} levels`);
  return { value, json: text, where };
}

export interface ParseLimits {
  maxDepth: number;
  /** Decodes CBOR bodies with the gateway's depth limit. */
  cbor: Codec;
}

/** Body → messages: every value validated and encoded before anything is published. */
export function parse(definition: MessageDefinition<unknown> | null, type: BodyType, body: Buffer, limits: ParseLimits): OutgoingMessage[] {
  if (type === 'cbor') {
    let value: unknown;
    try {
      value = limits.cbor.decode(body);
    } catch (e) {
      throw new HttpError(400, `malformed CBOR: ${(e as Error).message}`);
    }
    return encodeAll(definition, [{ value, where: '' }]);
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new HttpError(400, 'the body is not valid UTF-8');
  }
  if (type === 'json') return encodeAll(definition, [parseJson(text, limits.maxDepth, '')]);
  const values: Parsed[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line !== '') values.push(parseJson(line, limits.maxDepth, `line ${i + 1}: `));
  }
  if (values.length === 0) throw new HttpError(400, 'empty NDJSON body');
  return encodeAll(definition, values);
}

/**
 * A decoded CBOR value as JSON text for an untyped topic, refusing what JSON would silently
 * change: byte strings (they would become {"0":…}), Maps and Sets (they would become {}),
 * undefined members (dropped); big integers and undefined at the top already throw.
 */
function cborValueAsJson(value: unknown): string {
  const text = JSON.stringify(value, (key, v: unknown) => {
    if (v === undefined && key !== '') throw new Error(`member ${JSON.stringify(key)} is undefined, which JSON cannot carry`);
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) throw new Error('byte strings cannot be carried as JSON');
    if (v instanceof Map || v instanceof Set) throw new Error('Maps and Sets cannot be carried as JSON');
    return v;
  });
  if (text === undefined) throw new Error('undefined cannot be carried as JSON');
  return text;
}

function encodeAll(definition: MessageDefinition<unknown> | null, values: Parsed[]): OutgoingMessage[] {
  return values.map(({ value, json, where }) => {
    const id = newId();
    try {
      if (!definition) {
        // JSON goes through as it came (no re-encoding to fail); CBOR values become JSON, and
        // some have no JSON form: that is bad input, never a silent change.
        const body = encoder.encode(json ?? cborValueAsJson(value));
        return { id, body, headers: { [HEADER.contentType]: 'application/json', [HEADER.id]: id } };
      }
      const { body, headers } = definition.encode(definition.validate(value));
      headers[HEADER.id] = id;
      return { id, body, headers };
    } catch (e) {
      throw new HttpError(400, `${where}${(e as Error).message}${json === undefined && !definition ? ' (an untyped topic carries JSON)' : ''}`);
    }
  });
}
