/**
 * Durable mode's sync order (issue 14): a topic may let its disk queue's read position pass a
 * message only once every channel's copy of it is on disk. The crash is injected at a backend's
 * sync: from that call on no sync runs (the process is dead), the data dir is copied as the
 * kernel holds it (what a kill -9 leaves) and the copy is reopened.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { diskBackend, restoreTopology } from '../../src/engine/disk/index.ts';
import { Engine } from '../../src/engine/index.ts';
import type { BackendFactory } from '../../src/engine/types.ts';
import { uniqueName } from '../helpers/index.ts';
import { collect, recordingFactory, settle } from './helpers.ts';

const N = 100;

/**
 * Engines and dirs made by a test, closed then removed in that order when it ends (separate
 * t.after hooks would remove a dir before its engine's close wrote to it).
 */
function scope(t: TestContext) {
  const engines: Engine[] = [];
  const dirs: string[] = [];
  t.after(async () => {
    for (const engine of engines) await engine.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir(): string {
      const dir = mkdtempSync(join(tmpdir(), 'conveyor-sync-'));
      dirs.push(dir);
      return dir;
    },
    engine(engine: Engine): Engine {
      engines.push(engine);
      return engine;
    },
  };
}
type Scope = ReturnType<typeof scope>;
const body = (n: number) => new TextEncoder().encode(`m${n}`);
const number = (b: Uint8Array) => Number(new TextDecoder().decode(b).slice(1));

/** A durable disk backend whose `crashAt` queue (topic, or "topic:channel") kills the process when its sync starts. */
function crashable(dir: string) {
  const state = { crashAt: '', crashed: false };
  const inner = diskBackend({ dir, durable: true });
  const factory: BackendFactory = (topic, channel) => {
    const queue = inner(topic, channel);
    const name = channel === undefined ? topic : `${topic}:${channel}`;
    const sync = queue.sync.bind(queue);
    queue.sync = () => {
      if (name === state.crashAt) state.crashed = true;
      // Dead: this sync and every later one never happen.
      if (state.crashed) return new Promise<void>(() => {});
      return sync();
    };
    return queue;
  };
  return { state, factory };
}

/** The data dir as a kill -9 at this instant leaves it, reopened; resolves with every message channel `c` delivers. */
async function reopen(s: Scope, dir: string, topicName: string): Promise<number[]> {
  const copy = s.dir();
  cpSync(dir, copy, { recursive: true });
  const engine = s.engine(new Engine({ memQueueSize: 0, scanIntervalMs: 5, backend: diskBackend({ dir: copy, durable: true }) }));
  restoreTopology(engine, copy);
  const got = collect(engine.topic(topicName).channel('c'), 1000, { autoFinish: true }).got;
  // Drained: nothing new for 100 ms (the pump and deliveries run on setImmediate).
  for (let quiet = 0, before = -1; quiet < 10; quiet = got.length === before ? quiet + 1 : 0) {
    before = got.length;
    await new Promise((r) => setTimeout(r, 10));
  }
  return got.map((m) => number(m.body));
}

/** Confirms N messages in the topic queue (no channel yet), then adds channel `c` and publishes one more. */
async function run(t: TestContext, crashAt: 'topic' | 'channel' | '') {
  const s = scope(t);
  const dir = s.dir();
  const { state, factory } = crashable(dir);
  const engine = s.engine(new Engine({ memQueueSize: 0, scanIntervalMs: 5, backend: factory }));
  const name = uniqueName('sync');
  const topic = engine.topic(name);
  topic.publish(Array.from({ length: N }, (_, n) => ({ body: body(n) })));
  await topic.sync(); // confirmed: 0..N-1
  state.crashAt = crashAt === 'topic' ? name : crashAt === 'channel' ? `${name}:c` : '';
  topic.channel('c'); // the pump moves the N messages from the topic queue into the channel's
  await settle();
  topic.publish([{ body: body(N) }]);
  const synced = topic.sync();
  if (crashAt === '') await synced;
  await settle(); // whatever was already under way when the process died
  return { state, delivered: await reopen(s, dir, name) };
}

function assertAllConfirmed(delivered: number[], what: string): void {
  const seen = new Set(delivered);
  const lost = Array.from({ length: N }, (_, n) => n).filter((n) => !seen.has(n));
  assert.deepEqual(lost, [], `${what}: confirmed messages lost`);
  console.log(`# ${what}: ${N} confirmed, ${seen.size} distinct delivered, ${delivered.length - seen.size} duplicates`);
}

describe('Topic.sync order in durable mode', () => {
  test('a crash as the channel queue syncs loses none of what the topic queue had confirmed', async (t) => {
    const { state, delivered } = await run(t, 'channel');
    assert.equal(state.crashed, true);
    assertAllConfirmed(delivered, 'crash at channel sync');
  });

  test('a crash as the topic queue syncs, after its channels, loses none either', async (t) => {
    const { state, delivered } = await run(t, 'topic');
    assert.equal(state.crashed, true);
    assertAllConfirmed(delivered, 'crash at topic sync');
  });

  test('without a crash everything arrives once', async (t) => {
    const { state, delivered } = await run(t, '');
    assert.equal(state.crashed, false);
    assert.deepEqual(
      delivered.sort((a, b) => a - b),
      Array.from({ length: N + 1 }, (_, n) => n),
    );
  });

  test('the channels sync before the topic, and pumped positions are released only after', async (t) => {
    const { made, factory } = recordingFactory();
    const events: string[] = [];
    const traced: BackendFactory = (topic, channel) => {
      const q = factory(topic, channel);
      const label = channel ?? 'topic';
      const sync = q.sync.bind(q);
      q.sync = () => {
        events.push(`sync ${label}`);
        return sync();
      };
      const release = q.release.bind(q);
      q.release = (m) => {
        events.push(`release ${label}`);
        release(m);
      };
      return q;
    };
    const engine = new Engine({ memQueueSize: 0, scanIntervalMs: 5, backend: traced });
    t.after(() => engine.close());
    const name = uniqueName('order');
    const topic = engine.topic(name);
    topic.publish([{ body: body(1) }, { body: body(2) }]);
    topic.pause(); // both channels get the backlog
    topic.channel('a');
    topic.channel('b');
    topic.unpause();
    const pumped = events.length;
    assert.equal(events.filter((e) => e === 'release topic').length, 0, 'released in the pump, before any channel sync');
    await topic.sync();
    const after = events.slice(pumped);
    const firstRelease = after.indexOf('release topic');
    assert.ok(firstRelease > after.indexOf('sync a') && firstRelease > after.indexOf('sync b'), after.join(', '));
    assert.ok(after.lastIndexOf('sync topic') > after.lastIndexOf('sync a'), after.join(', '));
    assert.equal(made.get(name)!.released.length, 2);
  });

  test('close keeps the topic positions of pumped messages only until the channels are closed', async (t) => {
    const s = scope(t);
    const dir = s.dir();
    const name = uniqueName('close');
    const first = s.engine(new Engine({ memQueueSize: 0, backend: diskBackend({ dir, durable: true }) }));
    const topic = first.topic(name);
    topic.publish(Array.from({ length: N }, (_, n) => ({ body: body(n) })));
    await topic.sync();
    topic.channel('c');
    await settle();
    await first.close();
    // Each message once: in the channel's queue, not also left in the topic's.
    const delivered = await reopen(s, dir, name);
    assert.deepEqual(
      delivered.sort((a, b) => a - b),
      Array.from({ length: N }, (_, n) => n),
    );
  });
});
