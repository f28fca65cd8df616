/**
 * The spool's re-publish loop on its own, on a real spool directory, with the broker call
 * replaced: what it does with each kind of failure, and that it keeps order across topics.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { ConveyorError } from '../../src/core/errors.ts';
import type { OutgoingMessage } from '../../src/core/message.ts';
import { Spool, type SpoolEvents } from '../../src/runtime/spool.ts';
import { waitFor } from '../helpers/index.ts';

/** A spool directory removed only after the spools made in it are closed (t.after runs in order). */
function setup(t: TestContext): { dir: string; keep: (spool: Spool) => Spool } {
  const dir = mkdtempSync(join(tmpdir(), 'spool-replay-'));
  const spools: Spool[] = [];
  t.after(async () => {
    for (const s of spools) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    keep: (spool) => {
      spools.push(spool);
      return spool;
    },
  };
}

const msg = (id: string): OutgoingMessage => ({ id, body: Buffer.from(id), headers: { 'x-n': id } });

function events() {
  const log: string[] = [];
  const ev: SpoolEvents = {
    spooled: (topic, count) => log.push(`spooled ${topic} ${count}`),
    replayed: (topic, count) => log.push(`replayed ${topic} ${count}`),
    rejected: (topic, count) => log.push(`rejected ${topic} ${count}`),
    stuck: (topic, error) => log.push(`stuck ${topic} ${(error as Error).message}`),
  };
  return { log, ev };
}

test('re-publishes in spool order, one topic run per call, with ids, headers and bodies intact', async (t) => {
  const { dir, keep } = setup(t);
  const sent: Array<[string, OutgoingMessage[]]> = [];
  let open = false;
  const { ev } = events();
  const spool = new Spool({ dir, retryMs: 10 }, async (topic, messages) => {
    if (!open) throw new ConveyorError('ERR_TRANSPORT', 'down');
    sent.push([topic, messages]);
  }, ev);
  keep(spool);
  await spool.append('a', [msg('a1'), msg('a2')]);
  await spool.append('b', [msg('b1')]);
  await spool.append('a', [msg('a3')]);
  assert.equal(spool.depth, 4);
  open = true;
  await waitFor(() => spool.depth === 0, 'drained');
  assert.deepEqual(
    sent.map(([topic, ms]) => [topic, ms.map((m) => m.id)]),
    [
      ['a', ['a1', 'a2']],
      ['b', ['b1']],
      ['a', ['a3']],
    ],
  );
  assert.deepEqual(sent[0]![1][0]!.headers, { 'x-n': 'a1' });
  assert.equal(Buffer.from(sent[0]![1][0]!.body).toString(), 'a1');
  assert.equal(spool.bytes, 0);
});

test('a message the broker refuses for good goes to spool.rejected.jsonl and the rest go on', async (t) => {
  const { dir, keep } = setup(t);
  const sent: string[] = [];
  const { log, ev } = events();
  let open = false;
  const spool = new Spool({ dir, retryMs: 10 }, async (topic, messages) => {
    if (!open) throw new ConveyorError('ERR_TRANSPORT', 'down');
    if (topic === 'huge') throw new ConveyorError('ERR_TOO_LARGE', 'too big for this broker');
    sent.push(...messages.map((m) => m.id!));
  }, ev);
  keep(spool);
  await spool.append('huge', [msg('h1')]);
  await spool.append('ok', [msg('o1')]);
  open = true;
  await waitFor(() => spool.depth === 0, 'drained');
  assert.deepEqual(sent, ['o1']);
  assert.ok(log.includes('rejected huge 1'));
  const kept = readFileSync(join(dir, 'spool.rejected.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(kept.map((k) => [k.topic, k.id, Buffer.from(k.body, 'base64').toString(), k.error]), [['huge', 'h1', 'h1', 'too big for this broker']]);
});

test('a configuration failure (TLS/AUTH refused) keeps the messages and retries, said once', async (t) => {
  const { dir, keep } = setup(t);
  const { log, ev } = events();
  let fixed = false;
  let calls = 0;
  const spool = new Spool({ dir, retryMs: 5 }, async () => {
    calls++;
    if (!fixed) throw new ConveyorError('ERR_TRANSPORT', 'nsq: requires AUTH', { retryable: false });
  }, ev);
  keep(spool);
  await spool.append('t', [msg('x')]);
  await waitFor(() => calls >= 3, 'retried');
  assert.equal(spool.depth, 1, 'still spooled');
  assert.equal(log.filter((l) => l.startsWith('stuck')).length, 1, 'said once');
  assert.equal(existsSync(join(dir, 'spool.rejected.jsonl')), false);
  fixed = true;
  await waitFor(() => spool.depth === 0, 'drained once fixed', 10_000);
});

test('what a closed spool held is there when it is opened again', async (t) => {
  const { dir, keep } = setup(t);
  const { ev } = events();
  const down = async () => {
    throw new ConveyorError('ERR_TRANSPORT', 'down');
  };
  const first = new Spool({ dir, retryMs: 10 }, down, ev);
  await first.append('t', [msg('k1'), msg('k2')]);
  await first.close();
  const got: string[] = [];
  const second = new Spool({ dir, retryMs: 10 }, async (_topic, ms) => void got.push(...ms.map((m) => m.id!)), ev);
  keep(second);
  await waitFor(() => second.depth === 0, 'drained');
  assert.deepEqual(got, ['k1', 'k2']);
});
