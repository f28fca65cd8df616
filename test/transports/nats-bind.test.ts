/**
 * nats:// bound to a JetStream topology that exists (`?bind.` and SubscribeOptions.bind): streams
 * found or checked and never changed, existing durable consumers read as configured.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { NatsTransport } from '../../src/transports/nats/index.ts';
import { parseNatsOptions } from '../../src/transports/nats/options.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
type Err = Error & { code?: string };

async function setup(t: TestContext) {
  const base = await requireService(t, 'nats');
  if (!base) return undefined;
  const nc = await natsConnect({ servers: '127.0.0.1:4222' });
  const jsm = await jetstreamManager(nc);
  const prefix = uniqueName('app');
  const stream = uniqueName('EVENTS');
  await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`], retention: RetentionPolicy.Limits, storage: StorageType.Memory });
  t.after(async () => {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  });
  const open = async (query: string) => {
    const transport = await NatsTransport.connect(parseTransportUrl(`${base}${query}`));
    t.after(() => transport.close());
    return transport;
  };
  return { base, jsm, js: jetstream(nc), prefix, stream, open };
}

describe('nats:// bind to existing names', () => {
  test('options: bind.<topic>=<stream>/<subject> and bind.<topic>:<channel>=<consumer>; bad ones reported together', () => {
    const o = parseNatsOptions(parseTransportUrl('nats://h?bind.orders=ORDERS/orders.eu.>&bind.logs=/app.logs&bind.orders:billing=BILL&envelope=false'));
    assert.deepEqual(o.topics.get('orders'), { stream: 'ORDERS', subject: 'orders.eu.>' });
    assert.deepEqual(o.topics.get('logs'), { stream: '', subject: 'app.logs' });
    assert.equal(o.consumers.get('orders:billing'), 'BILL');
    assert.equal(o.envelope, false);
    assert.throws(
      () => parseNatsOptions(parseTransportUrl('nats://h?bind.a=nosubject&bind.b=S/a.>.b&bind.c=a.b/x&bind.=x&bind.d:=y&bind.e:f=a.b&envelope=maybe')),
      (e: Err) => e.code === 'ERR_BAD_OPTIONS' && ['bind.a', 'bind.b', 'bind.c', 'bind.:', 'bind.d:', 'bind.e:f', 'envelope'].every((k) => e.message.includes(k)),
    );
  });

  test('an existing durable pull consumer is read as configured: its limits stay theirs, nack redelivers', async (t) => {
    const s = await setup(t);
    if (!s) return;
    await s.jsm.consumers.add(s.stream, {
      durable_name: 'workers',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${s.prefix}.jobs`,
      max_ack_pending: 7,
    });
    await s.js.publish(`${s.prefix}.jobs`, enc('before we came')); // DeliverPolicy.All: it is theirs to keep
    const transport = await s.open(`?bind.jobs=${s.stream}/${s.prefix}.jobs&bind.jobs:work=workers`);
    const seen: Delivery[] = [];
    const sub = await transport.subscribe('jobs', 'work', { maxInFlight: 3 }, (d) => {
      seen.push(d);
      if (d.attempts === 1 && dec(d.body) === 'retry me') d.nack(10);
      else d.ack();
    });
    await transport.publish('jobs', [{ id: 'aaaabbbbccccdddd', body: enc('retry me') }]);
    await waitFor(() => seen.length === 3, 'the old message, then one nacked and redelivered', 10_000);
    assert.deepEqual(
      seen.map((d) => [dec(d.body), d.attempts]),
      [
        ['before we came', 1],
        ['retry me', 1],
        ['retry me', 2],
      ],
    );
    assert.equal(seen[1]!.id, 'aaaabbbbccccdddd');
    sub.setMaxInFlight(5);
    await sub.close();
    const info = await s.jsm.consumers.info(s.stream, 'workers');
    assert.equal(info.config.max_ack_pending, 7, 'their max_ack_pending is untouched');
    assert.equal(info.config.filter_subject, `${s.prefix}.jobs`);
  });

  test('missing stream, subject or consumer is ERR_NOT_FOUND; a filter cannot be published to; a push consumer is refused', async (t) => {
    const s = await setup(t);
    if (!s) return;
    await s.jsm.consumers.add(s.stream, { durable_name: 'pushy', ack_policy: AckPolicy.Explicit, deliver_subject: `${s.prefix}_inbox` });
    const missing = uniqueName('NOPE');
    const transport = await s.open(
      `?bind.a=${missing}/${s.prefix}.a&bind.b=/nowhere_${s.prefix}.b&bind.c=${s.stream}/${s.prefix}.c.*&bind.c:gone=${uniqueName('gone')}&bind.c:push=pushy`,
    );
    const body = [{ body: enc('x') }];
    await assert.rejects(transport.publish('a', body), (e: Err) => e.code === 'ERR_NOT_FOUND' && e.message.includes(missing));
    await assert.rejects(transport.publish('b', body), (e: Err) => e.code === 'ERR_NOT_FOUND' && e.message.includes('nowhere_'));
    await assert.rejects(transport.publish('c', body), (e: Err) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('filter'));
    await assert.rejects(transport.subscribe('c', 'gone', { maxInFlight: 1 }, () => {}), (e: Err) => e.code === 'ERR_NOT_FOUND' && e.message.includes('gone'));
    await assert.rejects(transport.subscribe('c', 'push', { maxInFlight: 1 }, () => {}), (e: Err) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('push'));
    await assert.rejects(
      transport.subscribe('c', 'x', { maxInFlight: 1, bind: { topic: 'no-slash', channel: 'a.b' } }, () => {}),
      (e: Err) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('bind.topic') && e.message.includes('bind.channel'),
    );
  });

  test('per subscription: bind.topic overrides the URL for that subscription only', async (t) => {
    const s = await setup(t);
    if (!s) return;
    const transport = await s.open('');
    const got: string[] = [];
    const sub = await transport.subscribe('events', 'eu', { maxInFlight: 10, bind: { topic: `/${s.prefix}.eu.*` } }, (d) => {
      got.push(dec(d.body));
      d.ack();
    });
    t.after(() => sub.close());
    await s.js.publish(`${s.prefix}.eu.de`, enc('de'));
    await s.js.publish(`${s.prefix}.us.ny`, enc('ny'));
    await s.js.publish(`${s.prefix}.eu.fr`, enc('fr'));
    await waitFor(() => got.length === 2, 'the two eu events', 10_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, ['de', 'fr']);
  });
});
