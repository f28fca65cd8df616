import { ConveyorError } from '../errors.ts';
import { type Codec, DEFAULT_DECODE_LIMITS, type DecodeLimits } from './types.ts';

/**
 * JSON (UTF-8). JSON.parse defines "__proto__" as an own property, never as the prototype, and
 * V8 parses deep nesting without recursion, so only size is bounded here.
 */
export function jsonCodec(limits: Partial<DecodeLimits> = {}): Codec {
  const { maxBytes } = { ...DEFAULT_DECODE_LIMITS, ...limits };
  const encoder = new TextEncoder();
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return {
    contentType: 'application/json',
    encode(value) {
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch (cause) {
        throw new ConveyorError('ERR_ENCODE', `cannot encode as JSON: ${(cause as Error).message}`, { cause });
      }
      if (text === undefined) throw new ConveyorError('ERR_ENCODE', 'cannot encode undefined as JSON');
      return encoder.encode(text);
    },
    decode(bytes) {
      if (bytes.length > maxBytes) {
        throw new ConveyorError('ERR_TOO_LARGE', `JSON body of ${bytes.length} bytes exceeds the ${maxBytes}-byte limit`);
      }
      try {
        return JSON.parse(decoder.decode(bytes));
      } catch (cause) {
        throw new ConveyorError('ERR_DECODE', `malformed JSON: ${(cause as Error).message}`, { cause });
      }
    },
  };
}
