import { Decoder, Encoder } from 'cbor-x';
import { ConveyorError } from '../errors.ts';
import { scanCbor } from './cbor-scan.ts';
import { type Codec, DEFAULT_DECODE_LIMITS, type DecodeLimits } from './types.ts';

/**
 * CBOR (RFC 8949) through cbor-x, the fastest of the libraries measured (docs/decisions.md,
 * bench/codec.bench.ts). Only standard tags are written, so other CBOR stacks (Python's cbor2
 * in the seeds) read what we write: dates as tag 1, bignums as tags 2/3, typed arrays as RFC 8746
 * tags, Maps with non-string keys as tag 259. cbor-x's own record extension is off.
 */
export function cborCodec(limits: Partial<DecodeLimits> = {}): Codec {
  const { maxBytes, maxDepth } = { ...DEFAULT_DECODE_LIMITS, ...limits };
  // variableMapSize: smallest map headers, as canonical encoders (and cbor2) write them.
  const encoder = new Encoder({ useRecords: false, tagUint8Array: false, variableMapSize: true, pack: false });
  const decoder = new Decoder({ useRecords: false, mapsAsObjects: true, int64AsType: 'auto' } as ConstructorParameters<typeof Decoder>[0]);
  return {
    contentType: 'application/cbor',
    encode(value) {
      try {
        return encoder.encode(value);
      } catch (cause) {
        throw new ConveyorError('ERR_ENCODE', `cannot encode as CBOR: ${(cause as Error).message}`, { cause });
      }
    },
    decode(bytes) {
      if (bytes.length > maxBytes) {
        throw new ConveyorError('ERR_TOO_LARGE', `CBOR body of ${bytes.length} bytes exceeds the ${maxBytes}-byte limit`);
      }
      // Also refuses "__proto__" text, which cbor-x would silently rename to "__proto_".
      scanCbor(bytes, maxDepth);
      try {
        return decoder.decode(bytes);
      } catch (cause) {
        throw new ConveyorError('ERR_DECODE', `malformed CBOR: ${(cause as Error).message}`, { cause });
      }
    },
  };
}
