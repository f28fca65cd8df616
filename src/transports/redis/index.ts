/**
 * `redis://` / `rediss://` — Redis Streams through ioredis; Redis Pub/Sub for `#ephemeral` topics.
 *
 * | Conveyor      | Redis                                                                   |
 * |---------------|-------------------------------------------------------------------------|
 * | topic         | stream `<prefix><topic>` (XADD, pipelined; MAXLEN ~ maxLen)              |
 * | channel       | consumer group (created at `$`: new messages only), plus its own retry stream and delayed set |
 * | confirm       | the XADD reply                                                          |
 * | maxInFlight   | XREADGROUP COUNT = free slots                                           |
 * | ack           | XACK                                                                    |
 * | nack(delay)   | MULTI: ZADD to the channel's delayed set (due time) + XACK; a poller moves due ones into the channel's retry stream (Lua, atomic) |
 * | timeout       | XPENDING idle ≥ timeoutMs → XCLAIM to this consumer, attempts = the delivery count |
 * | touch         | XCLAIM to self with JUSTID (resets the idle time)                        |
 * | `#ephemeral` topic | PUBLISH / SUBSCRIBE: no persistence, every subscriber gets every message, acks are no-ops |
 * | `?bind.<topic>=<key>` | the stream (or Pub/Sub channel) is `<key>` as is, no prefix: existing names (also per subscription, `bind.topic`) |
 * | `?envelope=false` | Pub/Sub payloads are bare bodies; stream entries are the field `b` alone |
 *
 * Trimming is approximate and blind to consumer groups: entries past maxLen go even if a slow
 * channel has not read them. Size maxLen for the longest backlog you accept.
 */
import type { ConnectOptions, TransportFactory } from '../../core/transport.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, OutgoingMessage } from '../../core/message.ts';
import { loadOptional } from '../../core/optional.ts';
import { type SubscribeOptions, type Subscription, sendsBare, type Transport, type TransportFeatures } from '../../core/transport.ts';
import type { ParsedUrl } from '../../core/url.ts';
import { parseRedisOptions, type RedisOptions, streamKey, subscriptionKey } from './options.ts';
import { bareFields, entryFields, pubSubPayload } from './entry.ts';
import { bounded, PubSubSubscription, RedisSubscription } from './subscription.ts';

type IORedis = typeof import('ioredis');
export type RedisClient = import('ioredis').Redis;

export const createTransport: TransportFactory = (url, options) => RedisTransport.connect(url, options);

export function isEphemeralTopic(topic: string): boolean {
  return topic.endsWith('#ephemeral');
}

export class RedisTransport implements Transport {
  readonly kind = 'redis';
  readonly features: TransportFeatures;
  readonly options: RedisOptions;
  readonly #ioredis: IORedis;
  readonly client: RedisClient;
  readonly clientName: string;
  readonly #subs = new Set<Subscription>();
  readonly #pending = new Set<Promise<void>>();
  #closed = false;

  private constructor(ioredis: IORedis, options: RedisOptions, client: RedisClient, clientName: string) {
    this.#ioredis = ioredis;
    this.options = options;
    this.client = client;
    this.clientName = clientName;
    this.features = {
      delayedNack: true,
      delayedPublish: false,
      timeoutRedelivery: true,
      touch: true,
      persistent: true,
      guaranteedOrder: true,
      attemptsCounted: true,
      maxMessageBytes: options.maxMessageBytes,
      bind: true,
    };
  }

  /** @example const t = await RedisTransport.connect(parseTransportUrl('redis://127.0.0.1:6379')); */
  static async connect(parsed: ParsedUrl, connectOptions: ConnectOptions = {}): Promise<RedisTransport> {
    const ioredis = await loadOptional<IORedis>('ioredis', 'the redis:// transport');
    const options = parseRedisOptions(parsed);
    const name = connectOptions.clientId ?? `conveyor-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const client = RedisTransport.#client(ioredis, options, name);
    try {
      await client.connect();
    } catch (cause) {
      client.disconnect();
      throw new ConveyorError('ERR_TRANSPORT', `redis://: cannot connect to ${parsed.url.host}: ${(cause as Error).message}`, { cause });
    }
    return new RedisTransport(ioredis, options, client, name);
  }

  static #client(ioredis: IORedis, options: RedisOptions, name: string): RedisClient {
    const Redis = (ioredis as unknown as { default: new (url: string, o: object) => RedisClient }).default ?? ioredis.Redis;
    const client = new Redis(options.url, {
      lazyConnect: true,
      connectionName: name,
      // Keep commands queued across a reconnect rather than failing them after 20 tries.
      maxRetriesPerRequest: null,
      retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000),
    });
    client.on('error', () => {
      // ioredis reconnects by itself; commands wait in its offline queue meanwhile.
    });
    return client;
  }

  /** A second connection for blocking reads or Pub/Sub (a blocked connection serves nothing else). */
  async duplicate(): Promise<RedisClient> {
    const client = RedisTransport.#client(this.#ioredis, this.options, `${this.clientName}-sub`);
    await client.connect();
    return client;
  }

  publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    if (this.#closed) return Promise.reject(new ConveyorError('ERR_CLOSED', 'redis:// transport is closed'));
    for (const m of messages) {
      if (m.body.length > this.options.maxMessageBytes) {
        return Promise.reject(
          new ConveyorError('ERR_TOO_LARGE', `redis://: body of ${m.body.length} bytes exceeds maxMessageBytes ${this.options.maxMessageBytes}`),
        );
      }
      if (m.delayMs) return Promise.reject(new ConveyorError('ERR_BAD_OPTIONS', 'redis:// cannot delay a publish (features.delayedPublish is false)'));
    }
    const sent = this.#publish(topic, messages);
    this.#pending.add(sent);
    return sent.finally(() => this.#pending.delete(sent));
  }

  async #publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    const key = streamKey(this.options, topic);
    const now = String(Date.now());
    const pipeline = this.client.pipeline();
    for (const m of messages) {
      const bare = sendsBare(this.options.envelope, m);
      if (isEphemeralTopic(topic)) pipeline.publish(key, pubSubPayload(m, !bare));
      else pipeline.xadd(key, 'MAXLEN', '~', this.options.maxLen, '*', ...(bare ? bareFields(m) : entryFields(m, now, 1)));
    }
    let results: Array<[Error | null, unknown]> | null;
    try {
      results = await pipeline.exec();
    } catch (cause) {
      throw new ConveyorError('ERR_TRANSPORT', `redis://: publish failed: ${(cause as Error).message}`, { cause });
    }
    const failed = results?.find(([err]) => err);
    if (!results || failed) {
      throw new ConveyorError('ERR_NOT_CONFIRMED', `redis://: XADD failed: ${failed?.[0]?.message ?? 'no reply'}`, { retryable: true });
    }
  }

  async subscribe(topic: string, channel: string, options: SubscribeOptions, onMessage: (d: Delivery) => void): Promise<Subscription> {
    if (this.#closed) throw new ConveyorError('ERR_CLOSED', 'redis:// transport is closed');
    if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `redis://: maxInFlight must be a positive integer, got ${options.maxInFlight}`);
    }
    const key = subscriptionKey(this.options, topic, channel, options.bind);
    const sub = isEphemeralTopic(topic)
      ? await PubSubSubscription.start(this, key, topic, channel, onMessage, (s) => this.#subs.delete(s))
      : await RedisSubscription.start(this, key, topic, channel, options, onMessage, (s) => this.#subs.delete(s));
    this.#subs.add(sub);
    return sub;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#subs].map((s) => s.close()));
    await Promise.allSettled([...this.#pending]);
    this.#closed = true;
    await bounded(this.client.quit(), 1000);
    this.client.disconnect();
  }
}

