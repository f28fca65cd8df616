/**
 * The seeds' Redis snippets (test/interop/seeds/redis_*.py: redis-py, Pub/Sub channel `chatroom`)
 * run as written against the real Redis, both ways, with a Conveyor app whose `#ephemeral` topic is
 * bound to that channel by `?bind.<topic>=<channel>`. Only the channel's name is substituted, so
 * that runs do not share a channel.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bytesMessage } from '../../src/core/schema.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { app } from '../../src/runtime/app.ts';
import { RedisTransport } from '../../src/transports/redis/index.ts';
import { parseRedisOptions, streamKey } from '../../src/transports/redis/options.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { requirePython } from './python.ts';
import { runSeed, text } from './seeds.ts';

const COUNT = 200;

/** An `#ephemeral` topic (Pub/Sub) and the app URL binding it to `channel`. */
function bound(base: string, channel: string, query = ''): { topic: string; url: string } {
  const topic = `${uniqueName('chatroom')}#ephemeral`;
  return { topic, url: `${base}?bind.${encodeURIComponent(topic)}=${channel}${query}` };
}

describe('seeds: Redis (redis-py, Pub/Sub channel chatroom)', () => {
  test('options: bind.<topic> names the key as is; a channel binding or an empty name is refused', () => {
    const o = parseRedisOptions(parseTransportUrl('redis://h?bind.chatroom%23ephemeral=chatroom&bind.orders=legacy:orders'));
    assert.equal(streamKey(o, 'chatroom#ephemeral'), 'chatroom');
    assert.equal(streamKey(o, 'orders'), 'legacy:orders');
    assert.equal(streamKey(o, 'other'), 'conveyor:other');
    assert.throws(
      () => parseRedisOptions(parseTransportUrl('redis://h?bind.a:b=x&bind.c=&bind.=y')),
      (e: Error & { code?: string }) => e.code === 'ERR_BAD_OPTIONS' && ['bind.a:b', 'bind.c', 'bind.:'].every((k) => e.message.includes(k)),
    );
  });

  test(`redis-py's publisher.py as written → a Conveyor #ephemeral consumer bound to the channel: ${COUNT}/${COUNT}`, async (t) => {
    const base = await requireService(t, 'redis');
    if (!base || !requirePython(t)) return;
    const channel = uniqueName('chatroom');
    const { topic, url } = bound(base, channel);
    const a = app({ url });
    t.after(() => a.close());
    const got: string[] = [];
    await a.consume(bytesMessage('chat', { topic }), { channel: 'seeds', maxInFlight: 50 }, (body) => {
      got.push(Buffer.from(body).toString('utf8'));
    });
    // Pub/Sub keeps nothing: the subscriber is in place before publisher.py starts.
    const publisher = runSeed(t, 'redis_publisher.py', '"chatroom"', JSON.stringify(channel));
    for (let n = 0; n < COUNT; n++) publisher.child.stdin!.write(`${text(n)}\n`);
    publisher.child.stdin!.end();
    // The snippet loops on input() forever: end of input is its only way out (EOFError).
    const { stderr } = await publisher.exit;
    assert.match(stderr, /EOFError/);
    assert.doesNotMatch(stderr, /redis\.exceptions/);
    await waitFor(() => got.length >= COUNT, `${COUNT} messages from redis-py`, 20_000);
    assert.deepEqual(got, Array.from({ length: COUNT }, (_, n) => text(n)));
  });

  test(`a Conveyor #ephemeral producer (envelope=false) → redis-py's subscriber.py as written: ${COUNT}/${COUNT}`, async (t) => {
    const base = await requireService(t, 'redis');
    if (!base || !requirePython(t)) return;
    const channel = uniqueName('chatroom');
    const subscriber = runSeed(t, 'redis_subscriber.py', '"chatroom"', JSON.stringify(channel));
    const admin = await RedisTransport.connect(parseTransportUrl(base));
    t.after(() => admin.close());
    await waitFor(async () => {
      const [, n] = (await admin.client.pubsub('NUMSUB', channel)) as [string, number];
      return Number(n) === 1 || subscriber.child.exitCode !== null;
    }, 'subscriber.py subscribed', 20_000);
    assert.equal(subscriber.child.exitCode, null, 'subscriber.py is running');

    const { topic, url } = bound(base, channel, '&envelope=false');
    const a = app({ url });
    t.after(() => a.close());
    const Chat = bytesMessage('chat', { topic });
    for (let n = 0; n < COUNT; n++) await a.publish(Chat, new TextEncoder().encode(text(n)));
    await waitFor(() => subscriber.lines.length >= COUNT, `${COUNT} lines from subscriber.py`, 20_000);
    assert.deepEqual(subscriber.lines, Array.from({ length: COUNT }, (_, n) => `Got message: ${text(n)}`));
  });
});
