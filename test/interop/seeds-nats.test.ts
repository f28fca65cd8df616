/**
 * A JetStream topology that Conveyor did not make, and peers that know nothing of Conveyor: the
 * @nats-io client used raw (no nats CLI, and Debian has no Python NATS client) owns a stream
 * `<NAME>` on subjects `<prefix>.orders.>`, publishes bare bodies to `<prefix>.orders.eu.new`
 * and reads them back with a durable pull consumer of its own. Conveyor binds to them by name
 * (`?bind.`), 200 of 200 each way.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { bytesMessage } from '../../src/core/schema.ts';
import { app } from '../../src/runtime/app.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { text } from './seeds.ts';

const COUNT = 200;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** The foreign side: a raw connection and a limits-retention stream of its own, deleted after the test. */
async function foreign(t: TestContext) {
  const base = await requireService(t, 'nats');
  if (!base) return undefined;
  const nc = await natsConnect({ servers: '127.0.0.1:4222' });
  const jsm = await jetstreamManager(nc);
  const prefix = uniqueName('shop');
  const stream = uniqueName('ORDERS');
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.orders.>`], retention: RetentionPolicy.Limits, storage: StorageType.Memory });
  t.after(async () => {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  });
  return { base, nc, jsm, js: jetstream(nc), prefix, stream };
}

describe('seeds: NATS JetStream (a foreign stream, subject and consumer)', () => {
  test(`a raw JetStream publisher (no headers) → a Conveyor consumer bound to the stream by subject: ${COUNT}/${COUNT}, other subjects left out`, async (t) => {
    const f = await foreign(t);
    if (!f) return;
    // `/<filter>`: the stream is whichever holds the subject; the channel's consumer filters on it.
    const url = `${f.base}?bind.orders=/${f.prefix}.orders.eu.*`;
    const a = app({ url });
    t.after(() => a.close());
    const got: string[] = [];
    const headers: Array<Record<string, string>> = [];
    await a.consume(bytesMessage('order', { topic: 'orders' }), { channel: 'billing', maxInFlight: 50 }, (body, ctx) => {
      got.push(dec.decode(body));
      headers.push({ ...ctx.headers });
    });
    for (let n = 0; n < COUNT; n++) {
      await f.js.publish(`${f.prefix}.orders.eu.new`, enc.encode(text(n)));
      if (n % 50 === 0) await f.js.publish(`${f.prefix}.orders.us.new`, enc.encode('not for this filter'));
    }
    await waitFor(() => got.length >= COUNT, `${COUNT} orders from the raw publisher`, 20_000);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got, Array.from({ length: COUNT }, (_, n) => text(n)));
    // Nothing but the body came; the subject it came on is told, as the filter has a wildcard.
    assert.deepEqual(headers[0], { 'nats-subject': `${f.prefix}.orders.eu.new` });
    // Conveyor's durable lives on their stream, named <topic>:<channel>; their stream is as they made it.
    const info = await f.jsm.consumers.info(f.stream, 'orders:billing');
    assert.equal(info.config.filter_subject, `${f.prefix}.orders.eu.*`);
    const si = await f.jsm.streams.info(f.stream);
    assert.deepEqual(si.config.subjects, [`${f.prefix}.orders.>`]);
    assert.equal(si.config.retention, RetentionPolicy.Limits);
  });

  test(`a Conveyor producer (envelope=false) → a raw durable pull consumer of their own: ${COUNT}/${COUNT}, bodies as is, no Conveyor headers`, async (t) => {
    const f = await foreign(t);
    if (!f) return;
    await f.jsm.consumers.add(f.stream, {
      durable_name: 'audit',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${f.prefix}.orders.eu.>`,
    });
    const a = app({ url: `${f.base}?bind.orders=${f.stream}/${f.prefix}.orders.eu.new&envelope=false` });
    t.after(() => a.close());
    const Order = bytesMessage('order', { topic: 'orders' });
    await Promise.all(Array.from({ length: COUNT }, (_, n) => a.publish(Order, enc.encode(text(n)))));
    const consumer = await f.js.consumers.get(f.stream, 'audit');
    const got: string[] = [];
    const headerNames = new Set<string>();
    while (got.length < COUNT) {
      const batch = await consumer.fetch({ max_messages: COUNT - got.length, expires: 5000 });
      let seen = 0;
      for await (const m of batch) {
        seen++;
        assert.equal(m.subject, `${f.prefix}.orders.eu.new`, 'the subject as bound, no prefix');
        got.push(dec.decode(m.data));
        for (const k of m.headers?.keys() ?? []) headerNames.add(k);
        m.ack();
      }
      if (seen === 0) break;
    }
    // Publishes of one tick go out together and may be confirmed in any order: compare as sets.
    assert.equal(got.length, COUNT);
    assert.deepEqual([...got].sort(), Array.from({ length: COUNT }, (_, n) => text(n)).sort());
    assert.deepEqual([...headerNames], ['Nats-Msg-Id'], "only JetStream's own dedup id rides along");
  });
});
