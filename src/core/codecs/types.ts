/** A codec turns values into body bytes and back. Chosen per message by its content-type header. */
export interface Codec {
  readonly contentType: string;
  /** Throws ConveyorError ERR_ENCODE for values the format cannot carry. */
  encode(value: unknown): Uint8Array;
  /** Throws ConveyorError ERR_DECODE (or ERR_TOO_LARGE) for bytes that are not one well-formed value. */
  decode(bytes: Uint8Array): unknown;
}

/** Limits applied when decoding untrusted bytes. */
export interface DecodeLimits {
  /** Largest body decoded, bytes. @default 16 MiB */
  maxBytes: number;
  /** Deepest nesting of arrays, maps and tags. @default 100 */
  maxDepth: number;
}

export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxBytes: 16 * 1024 * 1024,
  maxDepth: 100,
});

/** The bytes of the key that must never reach an object literal as a prototype setter. */
export const PROTO_KEY = new TextEncoder().encode('__proto__');
