/**
 * Two copies of the package in one process (a global `conveyor` CLI running a project that
 * installed its own): errors and apps of one copy are recognised by the other.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConveyorError, isRetryable, PermanentError } from '../../src/core/errors.ts';
import { App } from '../../src/runtime/app.ts';

test('a ConveyorError, a PermanentError and an App from another module instance pass instanceof', async () => {
  // A query string makes the loader evaluate the module again: a second copy with its own classes.
  const other = (await import(`../../src/core/errors.ts?copy=${Date.now()}`)) as typeof import('../../src/core/errors.ts');
  assert.notEqual(other.ConveyorError, ConveyorError, 'really a second copy');
  const permanent = new other.PermanentError('no customer');
  assert.ok(permanent instanceof ConveyorError);
  assert.ok(permanent instanceof PermanentError);
  assert.equal(isRetryable(permanent), false, 'not retried as an unknown error would be');
  const plain = new other.ConveyorError('ERR_SCHEMA', 'bad');
  assert.ok(plain instanceof ConveyorError);
  assert.ok(!(plain instanceof PermanentError));
  assert.ok(!(new Error('x') instanceof ConveyorError));
  assert.ok(!(new ConveyorError('ERR_SCHEMA', 'x') instanceof PermanentError));

  const otherApp = (await import(`../../src/runtime/app.ts?copy=${Date.now()}`)) as typeof import('../../src/runtime/app.ts');
  assert.notEqual(otherApp.App, App);
  const a = otherApp.app({ url: 'memory://two-copies' });
  assert.ok(a instanceof App);
  assert.ok(!({} instanceof App));
  await a.close();
});
