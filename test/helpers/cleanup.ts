/**
 * Removes what a test's topic left on a real engine once the test ends, so that runs leave no
 * queues, exchanges, streams or keys behind (issue 9: "tests leave no tables or queues behind").
 * Engines that keep nothing per topic (memory, nsq/embedded on port 0, MQTT without retained
 * messages, Kafka on the per-file mock) need nothing.
 */
import type { TestContext } from 'node:test';
import { parseTransportUrl } from '../../src/core/url.ts';

const RETRY_BUCKETS = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

export function cleanupTopic(t: TestContext, url: string, topic: string, channels: readonly string[]): void {
  const scheme = /^([a-z]+):/.exec(url)?.[1];
  t.after(async () => {
    if (scheme === 'amqp' || scheme === 'amqps') {
      const { AmqpTransport } = await import('../../src/transports/amqp/index.ts');
      const admin = await AmqpTransport.connect(parseTransportUrl(url));
      try {
        const ch = await admin.connection!.createChannel();
        for (const name of [topic, `${topic}.dead`]) {
          for (const c of channels) {
            await ch.deleteQueue(`${name}:${c}`).catch(() => undefined);
            for (const b of RETRY_BUCKETS) await ch.deleteQueue(`${name}:${c}.retry.${b}`).catch(() => undefined);
          }
          await ch.deleteExchange(name).catch(() => undefined);
        }
        await ch.close().catch(() => undefined);
      } finally {
        await admin.close();
      }
    } else if (scheme === 'redis' || scheme === 'rediss') {
      const { RedisTransport } = await import('../../src/transports/redis/index.ts');
      const admin = await RedisTransport.connect(parseTransportUrl(url));
      try {
        const keys = await admin.client.keys(`conveyor:${topic}*`);
        if (keys.length > 0) await admin.client.del(...keys);
      } finally {
        await admin.close();
      }
    } else if (scheme === 'nats') {
      const { NatsTransport } = await import('../../src/transports/nats/index.ts');
      const { streamName } = await import('../../src/transports/nats/options.ts');
      const { jetstreamManager } = await import('@nats-io/jetstream');
      const admin = await NatsTransport.connect(parseTransportUrl(url));
      try {
        const jsm = await jetstreamManager(admin.connection);
        for (const name of [topic, `${topic}.dead`]) await jsm.streams.delete(streamName(admin.options, name)).catch(() => undefined);
      } finally {
        await admin.close();
      }
    }
  });
}
