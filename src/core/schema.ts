/**
 * Typed, versioned messages: a value in code, bytes on the wire. A definition names its
 * schema (any Standard Schema: zod, valibot, arktype), its current version and how to upgrade
 * each older version one step — the seeds' "soft scheme upgrade". Encoding validates; decoding
 * picks the codec from the content-type header, upgrades old versions step by step, then
 * validates. Every failure is a typed, non-retryable ConveyorError, which the runtime sends to
 * dead-letter with the reason.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { type Codec, codecFor, codecs } from './codecs/index.ts';
import { ConveyorError } from './errors.ts';
import { HEADER, type Headers } from './message.ts';

export interface MessageDefinition<T> {
  readonly name: string;
  /** The version this code writes, an integer ≥ 1. */
  readonly version: number;
  /** The topic messages of this kind go to. */
  readonly topic: string;
  /** The codec used for encoding (decoding follows the message's content-type header). */
  readonly contentType: string;
  /** Validates then encodes. Throws ERR_SCHEMA or ERR_ENCODE; nothing is encoded then. */
  encode(value: T): { body: Uint8Array; headers: Headers };
  /**
   * Decodes with the codec its content-type names, upgrades from the version it was written
   * with, validates. Throws ERR_DECODE, ERR_TOO_LARGE, ERR_UNKNOWN_CONTENT_TYPE, ERR_VERSION,
   * ERR_UPGRADE or ERR_SCHEMA.
   */
  decode(body: Uint8Array, headers: Readonly<Headers>): T;
  /** Validates a value without encoding it (the gateway checks a whole request before publishing). */
  validate(value: unknown): T;
}

export interface MessageOptions<S extends StandardSchemaV1> {
  /** Kind of message, e.g. "frame". Also the default topic. */
  name: string;
  /** The current version. @default 1 */
  version?: number;
  /** Validates the current version's shape. Must validate synchronously. */
  schema: S;
  /** @default name */
  topic?: string;
  /** A codec or a content type. @default CBOR */
  codec?: Codec | string;
  /**
   * `upgrade[n]` turns a version-n value into a version-(n+1) value; one step for every version
   * from 1 to version-1. A message without a version header is read as version 1.
   */
  upgrade?: Record<number, (old: any) => unknown>;
}

/**
 * Defines a message kind.
 *
 * @example
 * const Frame = defineMessage({
 *   name: 'frame',
 *   version: 2,
 *   schema: z.object({ camera: z.string(), ts: z.date(), score: z.number() }),
 *   upgrade: { 1: (v1: { cam: string; ts: Date }) => ({ camera: v1.cam, ts: v1.ts, score: 0 }) },
 * });
 */
export function defineMessage<S extends StandardSchemaV1>(
  options: MessageOptions<S>,
): MessageDefinition<StandardSchemaV1.InferOutput<S>> {
  type T = StandardSchemaV1.InferOutput<S>;
  const { name, schema } = options;
  const version = options.version ?? 1;
  const topic = options.topic ?? name;
  const codec = typeof options.codec === 'string' ? codecFor(options.codec) : (options.codec ?? codecs.cbor);
  const upgrade = { ...options.upgrade };
  checkOptions(options, version, topic, upgrade);

  const versionText = String(version);
  const baseHeaders: Headers = {
    [HEADER.contentType]: codec.contentType,
    [HEADER.type]: name,
    [HEADER.version]: versionText,
  };

  function validate(value: unknown): T {
    const result = schema['~standard'].validate(value);
    if (result instanceof Promise) {
      throw new ConveyorError(
        'ERR_BAD_OPTIONS',
        `${name}: the schema validates asynchronously; message schemas must validate synchronously`,
      );
    }
    if (result.issues) throw schemaError(name, result.issues);
    return result.value as T;
  }

  /**
   * Validates what a body decoded to. A schema handed bytes or an array reports what it read
   * through their prototypes (`at "at": expected number, received function` for a raw body:
   * that is Uint8Array.prototype.at), so a failure names what the body really was instead.
   */
  function validateBody(value: unknown, contentType: string | undefined): T {
    try {
      return validate(value);
    } catch (error) {
      if (!(error instanceof ConveyorError) || error.code !== 'ERR_SCHEMA') throw error;
      const what = describeBody(value);
      if (what === undefined) throw error;
      const type = contentType ?? codec.contentType;
      throw new ConveyorError(
        'ERR_SCHEMA',
        value instanceof Uint8Array
          ? `${name}: the body is ${what} (content-type ${type}), not an encoded ${name}; publish it as ${codec.contentType} or JSON, not as raw bytes`
          : `${name}: the body (content-type ${type}) decoded to ${what}, which the schema rejects: ${error.message.slice(name.length + 2)}`,
        { cause: error, details: { ...error.details, body: what, contentType: type } },
      );
    }
  }

  return {
    name,
    version,
    topic,
    contentType: codec.contentType,
    validate,
    encode(value) {
      const checked = validate(value);
      return { body: codec.encode(checked), headers: { ...baseHeaders } };
    },
    decode(body, headers) {
      const contentType = headers[HEADER.contentType];
      const value = (contentType === undefined || contentType === codec.contentType ? codec : codecFor(contentType)).decode(body);
      const written = readVersion(name, headers[HEADER.version]);
      if (written === version) return validateBody(value, contentType);
      if (written > version) {
        throw new ConveyorError('ERR_VERSION', `${name}: message is version ${written}, this code knows up to ${version}`, {
          details: { written, known: version },
        });
      }
      let current: unknown = value;
      for (let v = written; v < version; v++) {
        try {
          current = upgrade[v]!(current);
        } catch (cause) {
          throw new ConveyorError('ERR_UPGRADE', `${name}: upgrading version ${v} to ${v + 1} failed: ${(cause as Error).message}`, {
            cause,
            details: { from: v },
          });
        }
      }
      return validateBody(current, contentType);
    },
  };
}

/** What a decoded body is, when that is not a plain object (a schema's own words mislead then). */
function describeBody(value: unknown): string | undefined {
  if (value instanceof Uint8Array) {
    const preview = new TextDecoder('utf-8', { fatal: false }).decode(value.subarray(0, 32));
    return `${value.length} raw byte${value.length === 1 ? '' : 's'} (${JSON.stringify(preview)}${value.length > 32 ? '…' : ''})`;
  }
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (value === null) return 'null';
  if (typeof value !== 'object') return `a ${typeof value}`;
  return undefined;
}

function readVersion(name: string, header: string | undefined): number {
  if (header === undefined) return 1;
  const n = Number(header);
  if (!Number.isInteger(n) || n < 1) {
    throw new ConveyorError('ERR_VERSION', `${name}: invalid ${HEADER.version} header ${JSON.stringify(header)}`);
  }
  return n;
}

function checkOptions(
  options: MessageOptions<StandardSchemaV1>,
  version: number,
  topic: string,
  upgrade: Record<number, unknown>,
): void {
  const problems: string[] = [];
  if (typeof options.name !== 'string' || options.name === '') problems.push('name: must be a non-empty string');
  if (!Number.isInteger(version) || version < 1) problems.push(`version: must be an integer ≥ 1, got ${version}`);
  if (typeof topic !== 'string' || topic === '') problems.push('topic: must be a non-empty string');
  if (!options.schema || typeof options.schema['~standard']?.validate !== 'function') {
    problems.push('schema: must implement Standard Schema (zod, valibot, arktype, ...)');
  }
  for (let v = 1; Number.isInteger(version) && v < version; v++) {
    if (typeof upgrade[v] !== 'function') problems.push(`upgrade.${v}: missing the step from version ${v} to ${v + 1}`);
  }
  for (const key of Object.keys(upgrade)) {
    const v = Number(key);
    if (!Number.isInteger(v) || v < 1 || v >= version) problems.push(`upgrade.${key}: no such step below version ${version}`);
  }
  if (problems.length) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `defineMessage(${JSON.stringify(options.name)}): ${problems.join('; ')}`, {
      details: { problems },
    });
  }
}

function schemaError(name: string, issues: ReadonlyArray<StandardSchemaV1.Issue>): ConveyorError {
  const described = issues.map((issue) => {
    const path = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
    return path ? `at "${path}": ${issue.message}` : issue.message;
  });
  return new ConveyorError('ERR_SCHEMA', `${name}: ${described.join('; ')}`, {
    details: { issues: issues.map((i) => ({ message: i.message, path: (i.path ?? []).map((p) => (typeof p === 'object' ? p.key : p)) })) },
  });
}

/**
 * A message kind with no schema: the body passes through as bytes.
 *
 * @example
 * const Blob = bytesMessage('blob');
 */
export function bytesMessage(name: string, options: { topic?: string } = {}): MessageDefinition<Uint8Array> {
  const topic = options.topic ?? name;
  const headers: Headers = { [HEADER.contentType]: codecs.raw.contentType, [HEADER.type]: name, [HEADER.version]: '1' };
  const validate = (value: unknown): Uint8Array => {
    if (!(value instanceof Uint8Array)) throw new ConveyorError('ERR_SCHEMA', `${name}: expected a Uint8Array`);
    return value;
  };
  return {
    name,
    version: 1,
    topic,
    contentType: codecs.raw.contentType,
    validate,
    encode: (value) => ({ body: validate(value), headers: { ...headers } }),
    decode: (body) => body,
  };
}
