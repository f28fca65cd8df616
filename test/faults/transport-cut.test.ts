/**
 * Issue 14's broker-connection cut, for every transport a proxy can sit in front of: a producer
 * and a consumer on separate connections through src/testing/proxy.ts, messages flowing; then
 * every connection is dropped mid-stream and new ones refused for 5 s (shorter than the 20 s
 * database cut, to keep the folder's run short), then restored. Every confirmed message must
 * arrive at least once; the time from restore to the next confirm and the next delivery is printed.
 *
 * Kafka is not here: a Kafka client dials the bootstrap address only for metadata and then the
 * broker addresses the cluster advertises (librdkafka's mock cluster advertises its own ports),
 * so a proxy on the bootstrap address is not on the data path; cutting it cuts nothing.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import type { Transport } from '../../src/core/transport.ts';
import { startBroker } from '../../src/server/index.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { AmqpTransport } from '../../src/transports/amqp/index.ts';
import { NatsTransport } from '../../src/transports/nats/index.ts';
import { RedisTransport } from '../../src/transports/redis/index.ts';
import { requireService, SERVICES, type ServiceName, uniqueName, waitFor } from '../helpers/index.ts';
import { report, sampleRss, sleep } from './helpers.ts';

const CUT_MS = 5000;
const prefix = `cut${process.pid}_`;

interface Case {
  name: string;
  service?: ServiceName;
  /** host:port of the real broker. */
  target: () => Promise<{ host: string; port: number }>;
  url: (port: number) => string;
  cleanup?: (topic: string) => Promise<void>;
}

const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
});

const CASES: Case[] = [
  {
    name: 'nsq:// (embedded broker)',
    target: async () => {
      const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
      closers.push(() => broker.close());
      return { host: '127.0.0.1', port: Number(broker.tcpAddress.split(':').at(-1)) };
    },
    url: (port) => `nsq://127.0.0.1:${port}?reconnectMinMs=20&reconnectMaxMs=200`,
  },
  {
    name: 'amqp:// (RabbitMQ)',
    service: 'rabbitmq',
    target: async () => SERVICES.rabbitmq,
    url: (port) => `amqp://guest:guest@127.0.0.1:${port}?reconnectMinMs=50&reconnectMaxMs=500`,
    cleanup: async (topic) => {
      const t = await AmqpTransport.connect(parseTransportUrl(SERVICES.rabbitmq.url));
      const ch = await t.connection!.createChannel();
      await ch.deleteQueue(`${topic}:c`);
      await ch.deleteExchange(topic);
      await ch.close();
      await t.close();
    },
  },
  {
    name: 'redis:// (Redis Streams)',
    service: 'redis',
    target: async () => SERVICES.redis,
    url: (port) => `redis://127.0.0.1:${port}?blockMs=200&prefix=${prefix}`,
    cleanup: async () => {
      const t = await RedisTransport.connect(parseTransportUrl(SERVICES.redis.url));
      const keys = await t.client.keys(`${prefix}*`);
      if (keys.length) await t.client.del(...keys);
      await t.close();
    },
  },
  {
    name: 'nats:// (JetStream)',
    service: 'nats',
    target: async () => SERVICES.nats,
    url: (port) => `nats://127.0.0.1:${port}?streamPrefix=${prefix.toUpperCase()}&reconnectWaitMs=50&publishTimeoutMs=1000`,
    cleanup: async () => {
      const { jetstreamManager } = await import('@nats-io/jetstream');
      const t = await NatsTransport.connect(parseTransportUrl(SERVICES.nats.url));
      const jsm = await jetstreamManager(t.connection);
      for await (const s of jsm.streams.list()) if (s.config.name.startsWith(prefix.toUpperCase())) await jsm.streams.delete(s.config.name);
      await t.close();
    },
  },
  {
    name: 'mqtt:// (Mosquitto)',
    service: 'mqtt',
    target: async () => SERVICES.mqtt,
    url: (port) => `mqtt://127.0.0.1:${port}?sessionExpirySec=10&reconnectMs=100&publishTimeoutMs=3000`,
  },
];

describe(`broker connection cut for ${CUT_MS / 1000} s mid-stream`, () => {
  for (const c of CASES) {
    test(`${c.name}: every confirmed message arrives; recovery time printed`, { timeout: 90_000 }, async (t) => {
      if (c.service && !(await requireService(t, c.service))) return;
      const { host, port } = await c.target();
      const proxy = await TcpProxy.start(host, port);
      const topic = uniqueName('cut');
      const steps: Array<() => Promise<unknown>> = [() => proxy.close()];
      t.after(async () => {
        for (const step of steps.reverse()) await step().catch(() => undefined);
        await c.cleanup?.(topic).catch(() => undefined);
      });
      const producer: Transport = await connect(c.url(proxy.port));
      steps.push(() => producer.close());
      const consumer: Transport = await connect(c.url(proxy.port));
      steps.push(() => consumer.close());
      const seen = new Map<number, number>();
      const seenAt = new Map<number, number>();
      const decoder = new TextDecoder();
      await consumer.subscribe(topic, 'c', { maxInFlight: 100 }, (d) => {
        const n = Number(decoder.decode(d.body));
        seen.set(n, (seen.get(n) ?? 0) + 1);
        if (!seenAt.has(n)) seenAt.set(n, performance.now());
        d.ack();
      });

      const rss = sampleRss();
      const encoder = new TextEncoder();
      const confirmedAt = new Map<number, number>();
      let sent = 0;
      let failed = 0;
      let producing = true;
      const lane = async () => {
        while (producing) {
          const n = sent++;
          try {
            await producer.publish(topic, [{ body: encoder.encode(String(n)) }]);
            confirmedAt.set(n, performance.now());
          } catch {
            failed++;
            await sleep(50);
          }
        }
      };
      const lanes = [lane(), lane()];
      await sleep(1500);
      proxy.refuse(true);
      proxy.dropAll();
      await sleep(CUT_MS);
      const restored = performance.now();
      proxy.refuse(false);
      await waitFor(() => [...confirmedAt.values()].some((at) => at > restored), 'a confirm after the cut', 30_000, 10);
      await waitFor(() => [...seenAt.values()].some((at) => at > restored), 'a delivery after the cut', 30_000, 10);
      await sleep(1000);
      producing = false;
      await Promise.all(lanes);
      await waitFor(() => [...confirmedAt.keys()].every((n) => seen.has(n)), 'every confirmed message', 30_000, 20);
      const memory = rss.stop();
      const lost = [...confirmedAt.keys()].filter((n) => !seen.has(n));
      const firstAfter = (m: Map<number, number>) => Math.min(...[...m.values()].filter((at) => at > restored)) - restored;
      report(`cut ${c.name}`, {
        cutMs: CUT_MS,
        confirmed: confirmedAt.size,
        failedPublishes: failed,
        delivered: seen.size,
        lost: lost.length,
        duplicates: [...seen.values()].reduce((s, k) => s + k - 1, 0),
        confirmAfterRestoreMs: firstAfter(confirmedAt),
        deliveryAfterRestoreMs: firstAfter(seenAt),
        rssPeakMb: memory.peakMb,
      });
      assert.equal(lost.length, 0, `confirmed but never delivered: ${lost.slice(0, 5).join(', ')}`);
    });
  }
});
