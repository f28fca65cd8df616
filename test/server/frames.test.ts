import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MESSAGE_FRAME_OVERHEAD, writeMessageFrame } from '../../src/server/tcp/frames.ts';

/** nsqd's message frame, built the plain way: BigInt nanoseconds, Buffer's checked writers. */
function reference(timestampMs: number, attempts: number, id: string, body: Uint8Array): Buffer {
  const out = Buffer.alloc(MESSAGE_FRAME_OVERHEAD + body.length);
  out.writeUInt32BE(MESSAGE_FRAME_OVERHEAD - 4 + body.length, 0);
  out.writeUInt32BE(2, 4);
  out.writeBigInt64BE(BigInt(Math.max(0, Math.floor(timestampMs))) * 1_000_000n, 8);
  out.writeUInt16BE(Math.min(attempts, 0xffff), 16);
  out.write(id.padEnd(16, ' '), 18, 16, 'latin1');
  out.set(body, 34);
  return out;
}

test('message frames match nsqd byte for byte: sizes, timestamps, attempts past u16, short ids', () => {
  const cases: Array<[number, number, string, number]> = [
    [1_764_633_600_123, 1, '0123456789abcdef', 200],
    [0, 0, 'ffffffffffffffff', 0],
    [2 ** 41 + 12_345, 65_535, '000000000000000a', 70_000],
    [1_700_000_000_000.9, 70_000, 'short', 3],
    [9_007_199_254, 300, 'abcdefabcdefabcd', 1],
  ];
  for (const [ts, attempts, id, size] of cases) {
    const body = Uint8Array.from({ length: size }, (_, i) => (i * 31) & 0xff);
    const out = Buffer.alloc(MESSAGE_FRAME_OVERHEAD + size + 7, 0xee);
    const end = writeMessageFrame(out, 7, ts, attempts, id, body);
    assert.equal(end, 7 + MESSAGE_FRAME_OVERHEAD + size);
    assert.deepEqual(out.subarray(7, end), reference(ts, attempts, id, body), `case ${ts}/${attempts}/${id}`);
    assert.ok(out.subarray(0, 7).every((b) => b === 0xee), 'nothing written before the offset');
  }
});
