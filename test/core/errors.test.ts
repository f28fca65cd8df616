import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConveyorError, ERROR_CODES, isRetryable, PermanentError } from '../../src/core/errors.ts';

test('every error code is documented in docs/errors.md', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const code of Object.keys(ERROR_CODES)) {
    assert.match(doc, new RegExp(`\\b${code}\\b`), `${code} missing from docs/errors.md`);
  }
});

test('bad input is permanent, broker trouble retryable, unknown errors retryable', () => {
  assert.equal(new ConveyorError('ERR_DECODE', 'x').retryable, false);
  assert.equal(new ConveyorError('ERR_SCHEMA', 'x').retryable, false);
  assert.equal(new ConveyorError('ERR_TRANSPORT', 'x').retryable, true);
  assert.equal(new PermanentError('no').retryable, false);
  assert.equal(isRetryable(new Error('boom')), true);
  assert.equal(isRetryable(new PermanentError('no')), false);
});

test('cause and details are kept', () => {
  const cause = new Error('socket hang up');
  const err = new ConveyorError('ERR_TRANSPORT', 'publish failed', { cause, details: { topic: 't' } });
  assert.equal(err.cause, cause);
  assert.deepEqual(err.details, { topic: 't' });
  assert.equal(err.code, 'ERR_TRANSPORT');
  assert.ok(err instanceof Error);
});
