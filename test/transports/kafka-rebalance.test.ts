/**
 * Rebalance on kafka://: three members of one channel (two in this process, one a child process);
 * mid-stream one leaves cleanly (close) and the child is killed (SIGKILL) while it holds records
 * it never acked. Checked: no record is lost (every one acked by someone), no offset is ever
 * committed past a record nobody had acked (sampled while it runs, and at the end), and the
 * duplicates (deliveries of a record beyond its first) are counted and reported.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, type TestContext, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { KafkaTransport } from '../../src/transports/kafka/index.ts';
import { groupId, parseKafkaOptions } from '../../src/transports/kafka/options.ts';
import { spawnChild } from '../helpers/child.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { KCAT, kafkaSkipReason, kafkaUrl, withOptions } from '../helpers/kafka-mock.ts';

const SKIP = kafkaSkipReason();
const BATCH = 100;
/** At least 12 batches (1200 records); more only while the child has not yet held 2 unacked records. */
const MAX_BATCHES = 40;
const OPTIONS = 'commitIntervalMs=100&sessionTimeoutMs=3000&heartbeatIntervalMs=500&rebalanceTimeoutMs=15000';

const MEMBER = new URL('./fixtures/kafka-member.ts', import.meta.url).pathname;

/** Which record id sits at each partition/offset, read back with kcat (headers hold conveyor-id). */
async function layout(bootstrap: string, topic: string): Promise<Map<string, string>> {
  const run = spawnChild(KCAT, ['-C', '-b', bootstrap, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%p %o %h\n']);
  assert.equal(await run.done, 0, run.err());
  const at = new Map<string, string>();
  for (const line of run.out().trim().split('\n')) {
    const [p, o, headers] = line.split(' ');
    const id = /(?:^|,)conveyor-id=([^,]+)/.exec(headers ?? '')?.[1];
    if (id) at.set(`${p}/${o}`, id);
  }
  return at;
}

describe('kafka:// rebalance: a member leaves cleanly, another is killed mid-stream', { skip: SKIP ?? false }, () => {
  test('1200+ records: none lost, none committed before its ack, duplicates counted', async (t: TestContext) => {
    const base = withOptions(await kafkaUrl(), OPTIONS);
    const { brokers } = parseKafkaOptions(parseTransportUrl(base));
    const topic = uniqueName('rebalance');
    const channel = 'work';
    const open = async () => {
      const tr = await KafkaTransport.connect(parseTransportUrl(base));
      t.after(() => tr.close());
      return tr;
    };
    const [ta, tb] = await Promise.all([open(), open()]);
    const deliveries = new Map<string, number>();
    const acked = new Set<string>();
    const delivered = (id: string) => deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
    const handler = (d: Delivery) => {
      delivered(d.id);
      setTimeout(() => {
        acked.add(d.id); // before the ack: the set may run ahead of the broker, never behind
        d.ack();
      }, 2);
    };
    // The child first (it creates the channel, at the topic's end), then the two members here.
    const child = spawn(process.execPath, ['--import', 'tsx', MEMBER, base, topic, channel], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let pending = '';
    let childErr = '';
    let childReady = false;
    let childDeliveries = 0;
    const childGot = new Set<string>();
    // The records the child never acks (kafka-member.ts: number 7 modulo 25, on every partition).
    const childHeld = () => [...childGot].filter((id) => Number(id.slice(1)) % 25 === 7 && !acked.has(id));
    let heldAtKill: string[] = [];
    child.stderr.setEncoding('utf8').on('data', (s: string) => (childErr += s));
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      const lines = (pending + s).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') childReady = true;
        else if (line.startsWith('d ')) {
          delivered(line.slice(2));
          childGot.add(line.slice(2));
          childDeliveries++;
        } else if (line.startsWith('a ')) acked.add(line.slice(2));
      }
    });
    await waitFor(() => childReady || child.exitCode !== null, 'the child member subscribed', 30_000);
    assert.ok(childReady, `the child member subscribed; stderr: ${childErr}`);
    const [subA, subB] = await Promise.all([ta.subscribe(topic, channel, { maxInFlight: 20 }, handler), tb.subscribe(topic, channel, { maxInFlight: 20 }, handler)]);
    t.after(() => subA.close());

    // Offsets committed for the channel, checked against what was acked: a commit at offset o on a
    // partition says every record below o is done, so each of them must have been acked.
    const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    t.after(() => admin.disconnect());
    const group = groupId(topic, channel);
    let at = new Map<string, string>();
    const violations: string[] = [];
    let samples = 0;
    const check = async () => {
      const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      // What the members printed before acking is in the pipe by now; let it be read (briefly: a
      // longer wait would let a redelivered record's later ack hide a commit that came before it).
      await new Promise((r) => setTimeout(r, 50));
      samples++;
      const ackedNow = new Set(acked);
      const below = offsets!.partitions.flatMap(({ partition, offset }) => Array.from({ length: Math.max(0, Number(offset)) }, (_, o) => `${partition}/${o}`));
      if (below.some((key) => !at.has(key))) at = await layout(brokers.join(','), topic); // published since the last read
      for (const key of below) {
        const id = at.get(key);
        if (id === undefined || !ackedNow.has(id)) violations.push(`${key} (${id ?? '?'}) committed before its ack`);
      }
    };

    // Published in batches of 100, the commits checked after each; B leaves after the 5th. The child
    // is killed once it holds 2 records it never acked, from the 8th batch on; until it does (a
    // rebalance under load can leave it without partitions for a while), more batches are published,
    // so it always has new records to be given.
    let batch = 0;
    let killed = false;
    for (; batch < 12 || !killed; batch++) {
      assert.ok(batch < MAX_BATCHES, `the child held 2 unacked records within ${MAX_BATCHES} batches; stderr: ${childErr}`);
      const records = Array.from({ length: BATCH }, (_, i) => {
        const n = batch * BATCH + i;
        return { id: `r${n}`, body: new TextEncoder().encode(`${n}`) };
      });
      await ta.publish(topic, records);
      await new Promise((r) => setTimeout(r, 200));
      if (batch === 4) await subB.close();
      if (batch >= 7 && !killed) {
        await waitFor(() => childHeld().length >= 2, 'the child holding 2 unacked records', 2_000, 20).catch(() => {});
        if (childHeld().length >= 2) {
          // Killed while it holds records it never acked: the test of "nothing committed past them".
          await new Promise((r) => setTimeout(r, 300)); // a few commit intervals: its commits must stop short of them
          await check();
          heldAtKill = childHeld();
          child.kill('SIGKILL');
          killed = true;
        }
      }
      await check();
    }
    const COUNT = batch * BATCH;
    at = await layout(brokers.join(','), topic);
    assert.equal(at.size, COUNT, 'every record is in the topic, with its id');
    // Only A is left: after the mock notices the child is gone (the session timeout), A takes its
    // partitions from their committed offsets and gets what the child held and did not ack.
    await waitFor(() => acked.size >= COUNT, `all ${COUNT} records acked`, 60_000, 50).catch((e: Error) => {
      const missing = [...at.values()].filter((id) => !acked.has(id));
      throw new Error(`${e.message}: ${missing.length} never acked, e.g. ${missing.slice(0, 5).join(', ')}`);
    });
    // The last acks are committed within commitIntervalMs; then every partition is at its end.
    await waitFor(
      async () => {
        const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
        return offsets!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0) === COUNT;
      },
      'every acked record committed',
      10_000,
      100,
    );
    await check();
    assert.deepEqual(violations, []);
    const duplicates = [...deliveries.values()].reduce((n, times) => n + times - 1, 0);
    for (const id of heldAtKill) assert.ok((deliveries.get(id) ?? 0) >= 2 && acked.has(id), `${id}, held by the killed child, came again and was acked`);
    const held = heldAtKill.length;
    if (childErr) t.diagnostic(`the child reported: ${childErr.trim().split('\n').slice(0, 5).join(' | ')}`);
    t.diagnostic(
      `${COUNT} records, ${[...deliveries.values()].reduce((a, b) => a + b, 0)} deliveries: ${duplicates} duplicates ` +
        `(${held} records the killed child held unacked came again), ${childDeliveries} to the child, ${samples} commit checks`,
    );
    assert.ok(duplicates >= 1, 'the records the killed child held came again');
  });
});
