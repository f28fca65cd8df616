/**
 * `conveyor stats` on every engine besides NSQ: the figures each engine reports, read from the
 * real service while a subscriber holds some messages unacked (issue 9, item 3).
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { ChannelModel } from 'amqplib';
import { connect } from '../../src/connect.ts';
import type { Delivery } from '../../src/core/message.ts';
import type { Transport, TransportStats } from '../../src/core/transport.ts';
import { cli } from '../helpers/child.ts';
import { cleanupTopic } from '../helpers/cleanup.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { kafkaSkipReason, kafkaUrl } from '../helpers/kafka-mock.ts';

/** Subscribes `c` holding at most 2 unacked, publishes 5: 2 in flight, 3 waiting. */
async function holdTwoOfFive(
  t: TestContext,
  url: string,
  topic: string,
  cleanup: (transport: any) => Promise<void> = async () => {},
): Promise<{ transport: Transport; held: Delivery[] }> {
  const transport = await connect(url);
  // What the engine keeps is removed over the transport's own connection, before it closes.
  t.after(async () => {
    await cleanup(transport);
    await transport.close();
  });
  const held: Delivery[] = [];
  await transport.subscribe(topic, 'c', { maxInFlight: 2 }, (d) => held.push(d));
  await transport.publish(
    topic,
    Array.from({ length: 5 }, (_, i) => ({ body: new TextEncoder().encode(`m${i}`), headers: { 'content-type': 'application/octet-stream' } })),
  );
  await waitFor(() => held.length === 2, 'two deliveries held', 10_000);
  return { transport, held };
}

async function statsJson(args: string[]): Promise<TransportStats> {
  const r = await cli(['stats', ...args, '--json']);
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as TransportStats;
}

describe('conveyor stats on the other engines', { timeout: 60_000 }, () => {
  test('amqp://: ready messages and consumers of the named channel\'s queue (passive declare)', async (t) => {
    const url = (await requireService(t, 'rabbitmq'))!;
    const topic = uniqueName('st');
    await holdTwoOfFive(t, url, topic, async (transport: { connection: ChannelModel }) => {
      const ch = await transport.connection.createChannel();
      await ch.deleteQueue(`${topic}:c`);
      await ch.deleteExchange(topic);
      await ch.close();
    });
    await waitFor(async () => (await statsJson([url, `${topic}:c`])).topics[0]!.channels[0]!.depth === 3, '3 ready', 10_000, 100);
    const stats = await statsJson([url, `${topic}:c`]);
    assert.deepEqual(stats.topics, [{ topic, channels: [{ channel: 'c', depth: 3, consumers: 1 }] }]);
    assert.match(stats.note!, /management plugin/);
    const table = await cli(['stats', url, `${topic}:c`]);
    assert.match(table.out, /^topic\s+channel\s+messages\s+depth\s+in flight\s+consumers\s+lag\n/);
    assert.match(table.out, /\n\s+c\s+3\s+-\s+1\s+-\n/);
    const missing = await cli(['stats', url, `${topic}:nope`]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /ERR_NOT_FOUND: amqp:\/\/: no queue ".*:nope": channel nope of topic .* was never subscribed/);
  });

  test('redis://: stream length, and per group its consumers, pending and lag (XLEN, XINFO GROUPS)', async (t) => {
    const url = (await requireService(t, 'redis'))!;
    const topic = uniqueName('st');
    await holdTwoOfFive(t, url, topic, async ({ client }: { client: import('ioredis').Redis }) => {
      const keys = await client.keys(`conveyor:${topic}*`);
      if (keys.length) await client.del(...keys);
    });
    // After the transport closed: closing a subscription still writes its retry key.
    cleanupTopic(t, url, topic, ['c']);
    const stats = await statsJson([url, topic]);
    assert.deepEqual(stats.topics, [{ topic, messages: 5, channels: [{ channel: 'c', depth: 3, lag: 3, inFlight: 2, consumers: 1 }] }]);
    // Without a topic: every Conveyor stream, this one among them.
    const all = await statsJson([url]);
    assert.ok(all.topics.some((x) => x.topic === topic && x.messages === 5));
  });

  test('nats://: stream messages, and per durable consumer num_pending and num_ack_pending', async (t) => {
    const url = (await requireService(t, 'nats'))!;
    const topic = uniqueName('st');
    await holdTwoOfFive(t, url, topic, async ({ connection }: { connection: NatsConnection }) => {
      const jsm = await jetstreamManager(connection);
      assert.equal(await jsm.streams.delete(`CONVEYOR_${topic}`), true);
    });
    const stats = await statsJson([url, topic]);
    assert.deepEqual(stats.topics, [{ topic, messages: 5, channels: [{ channel: 'c', depth: 3, inFlight: 2, lag: 3 }] }]);
    assert.match(stats.note!, /pull consumer/);
  });

  test('kafka://: lag = high watermark − committed offset, members per group', { skip: kafkaSkipReason() }, async (t) => {
    const url = await kafkaUrl();
    const topic = uniqueName('st');
    const { held } = await holdTwoOfFive(t, url, topic);
    // The mock cluster has no ListGroups, so the channel is named (a real cluster lists them).
    const stats = await statsJson([url, `${topic}:c`]);
    const c = stats.topics[0]!.channels[0]!;
    assert.deepEqual({ topic: stats.topics[0]!.topic, messages: stats.topics[0]!.messages, lag: c.lag, depth: c.depth }, { topic, messages: 5, lag: 5, depth: 5 });
    for (const d of held) d.ack();
    // The two acked are the first two (contiguous): the commit moves past them.
    await waitFor(async () => (await statsJson([url, `${topic}:c`])).topics[0]!.channels[0]!.lag === 3, 'lag 3 after two acks', 20_000, 200);
  });

  test('mqtt://: says plainly that MQTT has no depth', async (t) => {
    const url = (await requireService(t, 'mqtt'))!;
    const r = await cli(['stats', url]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /MQTT has no queue depth or consumer counts to report/);
  });
});
