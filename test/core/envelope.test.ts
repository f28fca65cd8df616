import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeEnvelope, encodeEnvelope, hasEnvelope } from '../../src/core/envelope.ts';
import { ConveyorError } from '../../src/core/errors.ts';

test('headers and body round-trip; no headers means the body as it is', () => {
  const body = new Uint8Array([1, 2, 3]);
  assert.equal(encodeEnvelope(body, undefined), body);
  const frame = encodeEnvelope(body, { 'content-type': 'application/cbor', 'conveyor-id': 'ééé' });
  assert.ok(hasEnvelope(frame));
  const out = decodeEnvelope(frame);
  assert.deepEqual(out.headers, { 'content-type': 'application/cbor', 'conveyor-id': 'ééé' });
  assert.deepEqual([...out.body], [1, 2, 3]);
});

test('a plain body from a foreign producer reads as a body without headers', () => {
  const body = new TextEncoder().encode('{"a":1}');
  assert.deepEqual(decodeEnvelope(body), { body, headers: undefined });
});

test('a body that itself starts with the magic survives by being wrapped', () => {
  const tricky = encodeEnvelope(new Uint8Array([9]), { a: 'b' });
  const wrapped = encodeEnvelope(tricky, {});
  assert.deepEqual(decodeEnvelope(wrapped).body, tricky);
});

test('lying lengths and truncation are ERR_DECODE at every cut', () => {
  const frame = encodeEnvelope(new Uint8Array(0), { name: 'value' });
  for (let cut = 6; cut < frame.length; cut++) {
    assert.throws(() => decodeEnvelope(frame.subarray(0, cut)), (e: unknown) => e instanceof ConveyorError && e.code === 'ERR_DECODE');
  }
  const huge = Uint8Array.from(frame);
  new DataView(huge.buffer).setUint32(6 + 2 + 4, 0xffffffff);
  assert.throws(() => decodeEnvelope(huge), (e: unknown) => e instanceof ConveyorError && e.code === 'ERR_DECODE');
});

test('__proto__ as a header name does not touch Object.prototype', () => {
  const frame = encodeEnvelope(new Uint8Array(0), { ['__proto__']: 'x' } as Record<string, string>);
  const { headers } = decodeEnvelope(frame);
  assert.equal(({} as Record<string, unknown>).x, undefined);
  assert.equal(Object.getPrototypeOf(headers), Object.prototype);
});
