import { Decoder, Encoder } from '@msgpack/msgpack';
import { ConveyorError } from '../errors.ts';
import { type Codec, DEFAULT_DECODE_LIMITS, type DecodeLimits, PROTO_KEY } from './types.ts';

/** The fixstr encoding of "__proto__". */
const PROTO_STR = Uint8Array.from([0xa0 | PROTO_KEY.length, ...PROTO_KEY]);

/**
 * MessagePack through @msgpack/msgpack: its decoder is iterative (hostile nesting cannot
 * overflow the stack) and checks declared lengths against the input before allocating.
 * bigints travel as int64 (useBigInt64).
 */
export function msgpackCodec(limits: Partial<DecodeLimits> = {}): Codec {
  const { maxBytes } = { ...DEFAULT_DECODE_LIMITS, ...limits };
  const encoder = new Encoder({ useBigInt64: true });
  const decoder = new Decoder({ useBigInt64: true, maxStrLength: maxBytes, maxBinLength: maxBytes });
  return {
    contentType: 'application/msgpack',
    encode(value) {
      try {
        return encoder.encode(value);
      } catch (cause) {
        throw new ConveyorError('ERR_ENCODE', `cannot encode as MessagePack: ${(cause as Error).message}`, { cause });
      }
    },
    decode(bytes) {
      if (bytes.length > maxBytes) {
        throw new ConveyorError('ERR_TOO_LARGE', `MessagePack body of ${bytes.length} bytes exceeds the ${maxBytes}-byte limit`);
      }
      // @msgpack/msgpack 3.1.3 throws on a "__proto__" key (older versions dropped it silently);
      // refusing first keeps that a typed ERR_DECODE whatever the installed version does.
      if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(PROTO_STR) !== -1) {
        throw new ConveyorError('ERR_DECODE', 'MessagePack map key "__proto__" is not allowed');
      }
      try {
        return decoder.decode(bytes);
      } catch (cause) {
        throw new ConveyorError('ERR_DECODE', `malformed MessagePack: ${(cause as Error).message}`, { cause });
      }
    },
  };
}
