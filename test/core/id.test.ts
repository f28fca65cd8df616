import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newId } from '../../src/core/id.ts';

test('ids are 16 lowercase hex chars and unique across prefix rollovers', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200_000; i++) {
    const id = newId();
    assert.ok(/^[0-9a-f]{16}$/.test(id), id);
    seen.add(id);
  }
  assert.equal(seen.size, 200_000);
});
