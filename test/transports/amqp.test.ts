import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import type { Delivery } from '../../src/core/message.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { conformance } from '../../src/testing/index.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { AmqpTransport } from '../../src/transports/amqp/index.ts';
import { delayBucket, parseAmqpOptions, queueName } from '../../src/transports/amqp/options.ts';
import { SERVICES, uniqueName, waitFor } from '../helpers/index.ts';

const URL = SERVICES.rabbitmq.url;
let proxy: TcpProxy;
before(async () => {
  proxy = await TcpProxy.start('127.0.0.1', 5672);
});
after(() => proxy.close());

conformance({
  name: 'amqp:// (RabbitMQ)',
  connect: () => connect(`amqp://guest:guest@127.0.0.1:${proxy.port}?reconnectMinMs=50`),
  dropConnection: () => proxy.dropAll(),
  // Durable queues, their retry queues and the exchanges outlive the test: remove them.
  cleanup: async (made) => {
    const t = await AmqpTransport.connect(parseTransportUrl(URL));
    const ch = await t.connection!.createChannel();
    for (const { topic, channels } of made) {
      for (const channel of channels) {
        const queue = queueName(t.options, topic, channel);
        for (const bucket of [64, 128, 256, 512, 1024, 2048]) await ch.deleteQueue(`${queue}.retry.${bucket}`);
        await ch.deleteQueue(queue);
      }
      await ch.deleteExchange(topic);
    }
    await ch.close();
    await t.close();
  },
});

describe('amqp:// specifics', () => {
  test('options: Conveyor keys leave the client URL, bad values are reported together', () => {
    const o = parseAmqpOptions(parseTransportUrl('amqp://u:p@h:5672/vh?heartbeat=5&prefix=app.&maxMessageBytes=1024'));
    assert.equal(o.prefix, 'app.');
    assert.equal(o.maxMessageBytes, 1024);
    assert.equal(o.url, 'amqp://u:p@h:5672/vh?heartbeat=5');
    assert.equal(queueName(o, 'frames', 'archive'), 'app.frames:archive');
    assert.throws(() => parseAmqpOptions(parseTransportUrl('amqp://h?maxMessageBytes=0&publishTimeoutMs=x')), (e: Error) => /maxMessageBytes/.test(e.message) && /publishTimeoutMs/.test(e.message));
  });

  test('delays round up to power-of-two buckets', () => {
    assert.equal(delayBucket(1), 64);
    assert.equal(delayBucket(100), 128);
    assert.equal(delayBucket(1000), 1024);
    assert.equal(delayBucket(1024), 1024);
  });

  test('attempts survive retries through the delay queue; durable queue keeps messages across a reconnect', async (t) => {
    const transport = await AmqpTransport.connect(parseTransportUrl(URL));
    const topic = uniqueName('amqp');
    // Hooks run in the order registered: delete what the test made before the transport closes
    // (registered after it, this ran on a closed connection and left the queues behind).
    const ch = await transport.connection!.createChannel();
    t.after(async () => {
      await ch.deleteQueue(`${topic}:c`);
      await ch.deleteQueue(`${topic}:c.retry.64`);
      await ch.deleteExchange(topic);
      await ch.close();
      await transport.close();
    });
    const seen: Delivery[] = [];
    await transport.subscribe(topic, 'c', { maxInFlight: 5 }, (d) => {
      seen.push(d);
      if (d.attempts < 3) d.nack(20);
      else d.ack();
    });
    await transport.publish(topic, [{ id: 'abcdabcdabcdabcd', body: new Uint8Array([1]), headers: { 'content-type': 'application/cbor', x: 'y' } }]);
    await waitFor(() => seen.length === 3, 'three attempts');
    assert.deepEqual(seen.map((d) => d.attempts), [1, 2, 3]);
    assert.ok(seen.every((d) => d.id === 'abcdabcdabcdabcd' && d.headers.x === 'y' && d.headers['content-type'] === 'application/cbor'));
    assert.ok(!('conveyor-attempts' in seen[2]!.headers), 'transport headers stay internal');
  });

  test('close right after the connection died resolves (amqplib leaves channel.close pending)', { timeout: 10_000 }, async (t) => {
    const own = await TcpProxy.start('127.0.0.1', 5672);
    t.after(() => own.close());
    const transport = await AmqpTransport.connect(parseTransportUrl(`amqp://guest:guest@127.0.0.1:${own.port}`));
    const topic = uniqueName('amqp');
    await transport.subscribe(`${topic}#ephemeral`, 'c#ephemeral', { maxInFlight: 1 }, () => {});
    own.dropAll();
    // Before the fix this promise never settled and the event loop ran dry.
    await transport.close();
  });

  test('a missing host is a clear transport error', async () => {
    await assert.rejects(connect('amqp://guest:guest@127.0.0.1:1'), (e: Error) => /ECONNREFUSED|connect/.test(e.message));
  });
});
