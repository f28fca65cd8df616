import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32, crc32Table } from '../../src/engine/disk/crc32.ts';

test('crc32: the native and the table version agree (segments written by either read with the other)', () => {
  assert.equal(crc32(Buffer.from('hello')), 0x3610a686);
  assert.equal(crc32Table(Buffer.from('hello')), 0x3610a686);
  assert.equal(crc32(new Uint8Array(0)), 0);
  for (const size of [1, 7, 200, 4096, 65_537]) {
    const data = randomBytes(size);
    assert.equal(crc32(data), crc32Table(data), `size ${size}`);
  }
});
