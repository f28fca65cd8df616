/**
 * A well-formedness pass over CBOR (RFC 8949 §5.3.1 / Appendix C) run before the decoder sees
 * untrusted bytes. It is iterative (no recursion, so no stack overflow on hostile nesting),
 * checks every declared length against the bytes that are actually there (a header claiming
 * 4 GB in a 10-byte body is an error here, never an allocation), bounds the depth, and refuses
 * trailing bytes. It allocates nothing but a small stack.
 */
import { ConveyorError } from '../errors.ts';

function fail(reason: string, at: number): never {
  throw new ConveyorError('ERR_DECODE', `malformed CBOR at byte ${at}: ${reason}`, { details: { offset: at } });
}

// remaining[i]: items still expected in the open container i; -1 = indefinite (until 0xff).
// chunkOf[i]: for an indefinite string, the major type its chunks must have; else -1.
// Module-level and reset per call: the scan is synchronous, and this keeps it allocation-free.
const remaining: number[] = [];
const chunkOf: number[] = [];

/** "__proto__" as UTF-8: a text string of these 9 bytes is refused wherever it stands. */
const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f];

/**
 * Throws ERR_DECODE unless `buf` holds exactly one well-formed CBOR data item nested at most
 * `maxDepth` deep and no text string "__proto__" (cbor-x 1.6.9 silently renames that key to
 * "__proto_"; older versions assigned it onto the object, replacing the prototype).
 */
export function scanCbor(buf: Uint8Array, maxDepth: number): void {
  remaining.length = 0;
  chunkOf.length = 0;
  const len = buf.length;
  let pos = 0;
  for (;;) {
    if (pos >= len) fail('truncated', pos);
    const start = pos;
    const ib = buf[pos++]!;
    const major = ib >> 5;
    const ai = ib & 31;
    let itemDone = true;

    if (ib === 0xff) {
      const top = remaining.length - 1;
      if (top < 0 || remaining[top] !== -1) fail('break outside an indefinite-length item', start);
      remaining.pop();
      chunkOf.pop();
    } else {
      const top = remaining.length - 1;
      if (top >= 0 && chunkOf[top] !== -1 && (major !== chunkOf[top] || ai === 31)) {
        fail('indefinite string chunk of the wrong type', start);
      }
      let arg = 0;
      if (ai < 24) arg = ai;
      else if (ai === 24 || ai === 25 || ai === 26 || ai === 27) {
        const size = 1 << (ai - 24);
        if (pos + size > len) fail('truncated argument', start);
        for (let i = 0; i < size; i++) arg = arg * 256 + buf[pos + i]!;
        pos += size;
      } else if (ai === 31) {
        if (major < 2 || major > 5) fail('indefinite length not allowed for this major type', start);
        arg = -1;
      } else fail('reserved additional information', start);

      switch (major) {
        case 0:
        case 1:
          break;
        case 2:
        case 3:
          if (arg === -1) {
            remaining.push(-1);
            chunkOf.push(major);
            itemDone = false;
          } else {
            if (arg > len - pos) fail(`declared length ${arg} exceeds the ${len - pos} bytes left`, start);
            if (major === 3 && arg === 9 && isProto(buf, pos)) fail('the key "__proto__" is not allowed', start);
            pos += arg;
          }
          break;
        case 4:
        case 5: {
          const items = arg === -1 ? -1 : major === 5 ? arg * 2 : arg;
          // Every item takes at least one byte: a count above the bytes left is a lie.
          if (items > len - pos) fail(`declared ${arg} entries but only ${len - pos} bytes left`, start);
          if (items !== 0) {
            remaining.push(items);
            chunkOf.push(-1);
            itemDone = false;
          }
          break;
        }
        case 6:
          remaining.push(1);
          chunkOf.push(-1);
          itemDone = false;
          break;
        case 7:
          if (ai === 24 && arg < 32) fail('invalid simple value encoding', start);
          break;
      }
      if (remaining.length > maxDepth) fail(`nesting deeper than ${maxDepth}`, start);
    }

    if (itemDone) {
      // Close every container this item completes.
      for (;;) {
        const top = remaining.length - 1;
        if (top < 0) {
          if (pos !== len) fail(`${len - pos} trailing bytes after the value`, pos);
          return;
        }
        if (remaining[top] === -1) break;
        remaining[top]!--;
        if (remaining[top]! > 0) break;
        remaining.pop();
        chunkOf.pop();
      }
    }
  }
}

function isProto(buf: Uint8Array, at: number): boolean {
  for (let i = 0; i < 9; i++) if (buf[at + i] !== PROTO[i]) return false;
  return true;
}
