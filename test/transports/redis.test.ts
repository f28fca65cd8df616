import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { conformance } from '../../src/testing/index.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { RedisTransport } from '../../src/transports/redis/index.ts';
import { parseRedisOptions } from '../../src/transports/redis/options.ts';
import { SERVICES, uniqueName, waitFor } from '../helpers/index.ts';

let proxy: TcpProxy;
before(async () => {
  proxy = await TcpProxy.start('127.0.0.1', 6379);
});
after(async () => {
  await proxy.close();
  // The conformance suite's streams live under their own prefix: remove them all.
  const t = await RedisTransport.connect(parseTransportUrl(SERVICES.redis.url));
  const keys = await t.client.keys('conveyor-test:*');
  if (keys.length) await t.client.del(...keys);
  await t.close();
});

conformance({
  name: 'redis:// (Redis Streams)',
  connect: () => connect(`redis://127.0.0.1:${proxy.port}?blockMs=200&prefix=conveyor-test:`),
  dropConnection: () => proxy.dropAll(),
});

/** Deletes every key this test's topic made. */
async function cleanup(t: RedisTransport, topic: string): Promise<void> {
  const keys = await t.client.keys(`conveyor:${topic}*`);
  if (keys.length) await t.client.del(...keys);
}

describe('redis:// specifics', () => {
  test('options are parsed and unknown ones refused together', () => {
    const o = parseRedisOptions(parseTransportUrl('redis://h:6380/2?prefix=app:&maxLen=10'));
    assert.equal(o.prefix, 'app:');
    assert.equal(o.maxLen, 10);
    assert.equal(o.url, 'redis://h:6380/2');
    assert.equal(o.envelope, true);
    assert.equal(parseRedisOptions(parseTransportUrl('redis://h?envelope=0')).envelope, false);
    assert.throws(
      () => parseRedisOptions(parseTransportUrl('redis://h?maxLen=0&bogus=1&envelope=yes')),
      (e: Error) => /maxLen/.test(e.message) && /bogus/.test(e.message) && /envelope/.test(e.message),
    );
  });

  test('a consumer that dies holding messages: another claims them after the timeout (XCLAIM), attempts + 1', async (t) => {
    // `a` reaches Redis through a proxy of its own, so it can "die": every socket cut, none allowed back.
    const own = await TcpProxy.start('127.0.0.1', 6379);
    t.after(() => own.close());
    const a = await RedisTransport.connect(parseTransportUrl(`redis://127.0.0.1:${own.port}?blockMs=100`));
    const b = await RedisTransport.connect(parseTransportUrl(`${SERVICES.redis.url}?blockMs=100`));
    const topic = uniqueName('rs');
    t.after(async () => {
      await cleanup(b, topic);
      await b.close();
    });
    const held: Delivery[] = [];
    await a.subscribe(topic, 'c', { maxInFlight: 10, timeoutMs: 300 }, (d) => held.push(d));
    await a.publish(topic, [{ id: 'x1', body: new Uint8Array([7]) }]);
    await waitFor(() => held.length === 1, 'a holds the message');
    own.refuse(true);
    own.dropAll();
    const got: Delivery[] = [];
    await b.subscribe(topic, 'c', { maxInFlight: 10, timeoutMs: 300 }, (d) => {
      got.push(d);
      d.ack();
    });
    await waitFor(() => got.length === 1, 'claimed by b', 5000);
    assert.equal(got[0]!.attempts, 2);
    assert.equal(got[0]!.id, 'x1');
    a.client.disconnect();
    await a.close();
  });

  test('#ephemeral topics use Pub/Sub: every subscriber gets every message, nothing is kept', async (t) => {
    const tr = await RedisTransport.connect(parseTransportUrl(SERVICES.redis.url));
    t.after(() => tr.close());
    const topic = `${uniqueName('chat')}#ephemeral`;
    const one: string[] = [];
    const two: string[] = [];
    await tr.subscribe(topic, 'a', { maxInFlight: 10 }, (d) => one.push(new TextDecoder().decode(d.body)));
    await tr.subscribe(topic, 'a', { maxInFlight: 10 }, (d) => two.push(new TextDecoder().decode(d.body)));
    await tr.publish(topic, [{ body: new TextEncoder().encode('hello'), headers: { who: 'me' } }]);
    await waitFor(() => one.length === 1 && two.length === 1, 'both subscribers');
    assert.deepEqual([one, two], [['hello'], ['hello']]);
    assert.equal(await tr.client.exists(`conveyor:${topic}`), 0, 'no stream is kept');
  });
});
