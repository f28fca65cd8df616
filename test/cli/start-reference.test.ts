/** The reference pipeline's Event schema (hand-written Standard Schema, no zod at run time). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Event } from '../../src/cli/reference.ts';
import { codecs } from '../../src/core/codecs/index.ts';

test('Event validates like the zod schema it replaced: fields checked, unknown keys dropped', () => {
  assert.deepEqual(Event.validate({ kind: 'click', user: 1, at: 5, extra: true }), { kind: 'click', user: 1, at: 5 });
  assert.deepEqual(Event.validate({ kind: 'k', user: -2, at: 1.5, payload: 'p' }), { kind: 'k', user: -2, at: 1.5, payload: 'p' });
  const bad: Array<[unknown, RegExp]> = [
    [{ kind: '', user: 1, at: 1 }, /at "kind": expected 1 to 64 characters, got 0/],
    [{ kind: 'x'.repeat(65), user: 1, at: 1 }, /at "kind": expected 1 to 64 characters, got 65/],
    [{ kind: 'k', user: 1.5, at: 1 }, /at "user": expected an integer, got 1.5/],
    [{ kind: 'k', user: 1, at: '1' }, /at "at": expected a finite number, got string/],
    [{ kind: 'k', user: 1, at: 1, payload: 'x'.repeat(4097) }, /at "payload": expected 0 to 4096 characters/],
    [[1, 2], /expected an object \{kind, user, at, payload\?\}, got an array/],
    [new Uint8Array(3), /got bytes/],
    [null, /got null/],
  ];
  for (const [value, reason] of bad) assert.throws(() => Event.validate(value), (e: Error & { code?: string }) => e.code === 'ERR_SCHEMA' && reason.test(e.message));
  const { body, headers } = Event.encode({ kind: 'view', user: 7, at: 9 });
  assert.deepEqual(Event.decode(body, headers), { kind: 'view', user: 7, at: 9 });
  assert.deepEqual(codecs.cbor.decode(body), { kind: 'view', user: 7, at: 9 });
});
