import { ConveyorError } from '../errors.ts';
import type { Codec } from './types.ts';

/** Bytes in, bytes out: for bodies Conveyor should not interpret. */
export function rawCodec(): Codec {
  return {
    contentType: 'application/octet-stream',
    encode(value) {
      if (value instanceof Uint8Array) return value;
      if (typeof value === 'string') return new TextEncoder().encode(value);
      throw new ConveyorError('ERR_ENCODE', 'the raw codec encodes Uint8Array or string values only');
    },
    decode(bytes) {
      return bytes;
    },
  };
}
