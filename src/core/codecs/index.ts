import { ConveyorError } from '../errors.ts';
import { cborCodec } from './cbor.ts';
import { jsonCodec } from './json.ts';
import { msgpackCodec } from './msgpack.ts';
import { rawCodec } from './raw.ts';
import type { Codec } from './types.ts';

export { cborCodec } from './cbor.ts';
export { scanCbor } from './cbor-scan.ts';
export { jsonCodec } from './json.ts';
export { msgpackCodec } from './msgpack.ts';
export { rawCodec } from './raw.ts';
export { type Codec, DEFAULT_DECODE_LIMITS, type DecodeLimits } from './types.ts';

/** The built-in codecs with default limits, by content type. */
export const codecs = {
  cbor: cborCodec(),
  json: jsonCodec(),
  msgpack: msgpackCodec(),
  raw: rawCodec(),
} as const;

const BY_TYPE = new Map<string, Codec>([
  ['application/cbor', codecs.cbor],
  ['application/json', codecs.json],
  ['application/msgpack', codecs.msgpack],
  ['application/x-msgpack', codecs.msgpack],
  ['application/vnd.msgpack', codecs.msgpack],
  ['application/octet-stream', codecs.raw],
]);

/**
 * The codec for a content-type header value. No header means CBOR, Conveyor's default;
 * parameters (`; charset=utf-8`) and case are ignored.
 */
export function codecFor(contentType: string | undefined): Codec {
  if (contentType === undefined || contentType === '') return codecs.cbor;
  const direct = BY_TYPE.get(contentType);
  if (direct) return direct;
  const bare = contentType.split(';', 1)[0]!.trim().toLowerCase();
  const codec = BY_TYPE.get(bare);
  if (!codec) {
    throw new ConveyorError('ERR_UNKNOWN_CONTENT_TYPE', `no codec for content-type "${contentType}"`, {
      details: { contentType, known: [...BY_TYPE.keys()] },
    });
  }
  return codec;
}
