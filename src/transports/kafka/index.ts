/**
 * `kafka://` — Apache Kafka through kafkajs.
 *
 * | Conveyor      | Kafka                                                                  |
 * |---------------|------------------------------------------------------------------------|
 * | topic         | topic (created on first use: CreateTopics with `partitions`, `replicationFactor`, or, on a broker without CreateTopics, a Metadata request that auto-creates) |
 * | channel       | consumer group `<topic>:<channel>`, per topic: its start is committed at the end of the topic when it is created |
 * | confirm       | produce with acks=all                                                  |
 * | ack           | offset commit of the contiguous acked run per partition (watermark.ts) |
 * | maxInFlight   | the fetch loop waits while that many records are unacked               |
 * | headers, id   | record headers (`conveyor-id`, `conveyor-attempts` carried as headers) |
 *
 * What Kafka cannot do, and what Conveyor does instead:
 * - Acks are offsets: a commit only moves past a contiguous run of acked records, so one slow
 *   record holds back the commit (not the deliveries) of its partition; a crash redelivers
 *   everything after it.
 * - No nack: `nack(delay)` waits `delay` in this process (the record stays unacked), produces a
 *   copy with `conveyor-attempts + 1` to the channel's own topic `conveyor-retry.<channel>.<topic>`
 *   (which only that group reads), then acks the original. `features.delayedNack` is false.
 * - No per-record timeout: an unacked record is redelivered only after a rebalance or restart;
 *   `touch()` is a no-op (liveness is the member's heartbeat).
 * - `#ephemeral` topics/channels are ordinary ones named `…__ephemeral`.
 *
 * Existing topics and groups (options.ts): `?bind.<topic>=<kafka topic>` names the topic as is,
 * `?bind.<topic>:<channel>=<group id>` makes the channel that group (per subscription too:
 * `SubscribeOptions.bind` `{ topic, channel }`, which wins over the URL), `?start=earliest` starts a new
 * channel at the topic's beginning (its history) instead of its end; `?envelope=false` publishes
 * bare records (the value alone, no headers). A record with no Conveyor headers (kafka-python,
 * kcat) is read with the definition's codec as version 1, its id `<kafka topic>/<partition>/<offset>`.
 *
 * @example
 * const transport = await connect('kafka://127.0.0.1:9092?partitions=6');
 */
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import type { Admin, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { ConnectOptions, TransportFactory } from '../../core/transport.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, OutgoingMessage } from '../../core/message.ts';
import { loadOptional } from '../../core/optional.ts';
import { type SubscribeOptions, type Subscription, sendsBare, type Transport, type TransportFeatures } from '../../core/transport.ts';
import type { ParsedUrl } from '../../core/url.ts';
import { KafkaCluster } from './cluster.ts';
import { badKafkaName, checkName, groupId, type KafkaOptions, parseKafkaOptions, retryTopic, topicName } from './options.ts';
import { KafkaSubscription, PROP } from './subscription.ts';
import { TopicMaker } from './topics.ts';
import { kafkaStats } from './stats.ts';
import type { StatsSelection } from '../../core/transport.ts';

type KafkaModule = typeof import('kafkajs');

/** Trouble the adapter survives (a failed commit, a failed retry copy) is reported here. */
const errors = diagnosticsChannel('conveyor:kafka:error');

export const createTransport: TransportFactory = (url, options) => KafkaTransport.connect(url, options);

export class KafkaTransport implements Transport {
  readonly kind = 'kafka';
  /** The engine's figures for Conveyor's groups (src/transports/kafka/stats.ts). */
  readonly stats = (select?: StatsSelection[]) => kafkaStats(this.#admin, select);
  readonly features: TransportFeatures;
  readonly options: KafkaOptions;
  #kafka: Kafka;
  #producer: Producer;
  #admin: Admin;
  #cluster: KafkaCluster;
  #topics: TopicMaker;
  /** Channels whose start position is being fixed by this process (one at a time per group). */
  #starts = new Map<string, Promise<void>>();
  #subs = new Set<KafkaSubscription>();
  #pending = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  private constructor(kafka: Kafka, producer: Producer, admin: Admin, cluster: KafkaCluster, options: KafkaOptions) {
    this.#kafka = kafka;
    this.#producer = producer;
    this.#admin = admin;
    this.#cluster = cluster;
    this.#topics = new TopicMaker(admin, cluster, options);
    this.options = options;
    this.features = {
      delayedNack: false,
      delayedPublish: false,
      timeoutRedelivery: false,
      touch: false,
      persistent: true,
      guaranteedOrder: false,
      attemptsCounted: false,
      maxMessageBytes: options.maxMessageBytes,
      bind: true,
    };
  }

  static async connect(url: ParsedUrl, connectOptions: ConnectOptions = {}): Promise<KafkaTransport> {
    const options = parseKafkaOptions(url);
    const mod = await loadOptional<KafkaModule>('kafkajs', 'kafka:// transport');
    const kafka = new mod.Kafka({
      clientId: connectOptions.clientId ?? `conveyor-${process.pid}`,
      brokers: options.brokers,
      ssl: options.ssl,
      sasl: options.sasl as never,
      connectionTimeout: options.connectTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      retry: { retries: options.retries },
      logLevel: mod.logLevel.NOTHING,
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    const admin = kafka.admin();
    let cluster: KafkaCluster | undefined;
    try {
      [cluster] = await Promise.all([KafkaCluster.connect(kafka), producer.connect(), admin.connect()]);
    } catch (cause) {
      await Promise.allSettled([producer.disconnect(), admin.disconnect(), cluster?.disconnect()]);
      if (cause instanceof ConveyorError) throw cause;
      throw new ConveyorError('ERR_TRANSPORT', `kafka:// could not connect to ${options.brokers.join(',')}: ${(cause as Error).message}`, { cause });
    }
    return new KafkaTransport(kafka, producer, admin, cluster, options);
  }

  #ensureTopic(name: string, bound = false): Promise<void> {
    return this.#topics.ensure(name, bound);
  }

  /**
   * Fixes a new channel's start: if the group has no committed offset on the topic, commits the
   * topic's end offsets (its beginning with `?start=earliest`) for it before any member joins. A channel then sees what is published
   * after its first subscribe, and its records stay there (uncommitted) when its first member
   * closes before acking them; the next member resumes from that commit, not from the end.
   */
  #fixStart(group: string, topic: string): Promise<void> {
    const prior = this.#starts.get(group) ?? Promise.resolve();
    const work = prior.then(async () => {
      const [committed] = await this.#admin.fetchOffsets({ groupId: group, topics: [topic] });
      if (committed?.partitions.some((p) => Number(p.offset) >= 0)) return;
      const ends = await this.#admin.fetchTopicOffsets(topic);
      const earliest = this.options.start === 'earliest';
      await this.#cluster.commit(
        group,
        topic,
        ends.map((p) => ({ partition: p.partition, offset: earliest ? p.low : p.high })),
      );
    });
    const settled = work.catch(() => undefined);
    this.#starts.set(group, settled);
    void settled.then(() => this.#starts.get(group) === settled && this.#starts.delete(group));
    return work;
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    this.#open();
    checkName('topic', topic);
    const { maxMessageBytes, envelope } = this.options;
    // One pass, one small object per record, and the body as is when it is already a Buffer (the
    // codec's output is): what a raw kafkajs producer builds, and nothing more (decisions.md).
    const records = new Array<{ value: Buffer; headers: Record<string, string | Buffer> }>(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const size = m.body.length;
      if (size > maxMessageBytes) {
        throw new ConveyorError('ERR_TOO_LARGE', `message of ${size} bytes is larger than maxMessageBytes ${maxMessageBytes}`, {
          details: { size, limit: maxMessageBytes },
        });
      }
      if (m.delayMs !== undefined && m.delayMs > 0) {
        throw new ConveyorError('ERR_BAD_OPTIONS', 'kafka:// cannot delay a publish (features.delayedPublish is false)');
      }
      let headers: Record<string, string | Buffer>;
      if (sendsBare(envelope, m)) headers = {};
      else {
        headers = m.headers === undefined ? {} : { ...m.headers };
        if (m.id !== undefined) headers[PROP.id] = m.id;
      }
      const body = m.body;
      records[i] = { value: Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength), headers };
    }
    if (records.length === 0) return;
    await this.#send(topicName(this.options, topic), records, this.options.topics.has(topic));
  }

  async #send(name: string, records: Array<{ value: Buffer; headers: Record<string, string | Buffer> }>, bound = false): Promise<void> {
    const work = this.#ensureTopic(name, bound).then(() => this.#producer.send({ topic: name, acks: -1, messages: records }));
    this.#pending.add(work);
    try {
      await work;
    } catch (cause) {
      if (cause instanceof ConveyorError) throw cause;
      throw new ConveyorError('ERR_NOT_CONFIRMED', `kafka:// ${records.length} records to ${name} were not confirmed: ${(cause as Error).message}`, {
        cause,
        retryable: true,
      });
    } finally {
      this.#pending.delete(work);
    }
  }

  async subscribe(topic: string, channel: string, options: SubscribeOptions, onMessage: (d: Delivery) => void): Promise<Subscription> {
    this.#open();
    checkName('topic', topic);
    checkName('channel', channel);
    const { maxInFlight } = options;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `maxInFlight must be a positive integer, got ${maxInFlight}`);
    }
    const { bind } = options;
    const bad = [
      bind?.topic === undefined ? undefined : badKafkaName(bind.topic, 'topic'),
      bind?.channel === undefined ? undefined : badKafkaName(bind.channel, 'group id'),
    ].filter(Boolean);
    if (bad.length > 0) throw new ConveyorError('ERR_BAD_OPTIONS', `kafka:// subscribe ${topic}:${channel}: bind: ${bad.join('; ')}`, { details: { bind } });
    // A subscription's own binding wins over the URL's, for this subscription only.
    const main = bind?.topic ?? topicName(this.options, topic);
    const retry = retryTopic(topic, channel);
    await Promise.all([this.#ensureTopic(main, bind?.topic !== undefined || this.options.topics.has(topic)), this.#ensureTopic(retry)]);
    const group = bind?.channel ?? groupId(topic, channel, this.options);
    try {
      await this.#fixStart(group, main);
    } catch (cause) {
      throw new ConveyorError('ERR_TRANSPORT', `kafka:// could not fix the start of channel ${channel} on ${topic}: ${(cause as Error).message}`, {
        cause,
        retryable: true,
      });
    }
    const consumer = this.#kafka.consumer({
      groupId: group,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: this.options.heartbeatIntervalMs,
      rebalanceTimeout: this.options.rebalanceTimeoutMs,
      allowAutoTopicCreation: false,
      // A short fetch long-poll: subscribe() waits for the first fetch (see below), and an idle
      // channel notices new records within this time.
      maxWaitTimeInMs: 500,
    });
    const sub = new KafkaSubscription(
      topic,
      channel,
      consumer,
      [main, retry],
      maxInFlight,
      this.options.commitIntervalMs,
      {
        republish: (message, attempts, id) => this.#republish(retry, message, attempts, id),
        onError: (error) => errors.hasSubscribers && errors.publish({ topic, channel, error }),
      },
      onMessage,
    );
    try {
      await consumer.connect();
      // The main topic's start was committed above; a partition with no commit (added later, or
      // the retry topic, which only this group reads) is read from its beginning: nothing is skipped.
      await consumer.subscribe({ topics: [main, retry], fromBeginning: true });
      // Resolve once the group is joined and has fetched once: offsets are then fixed, and a
      // message published after subscribe() returns is seen by this channel.
      const joined = new Promise<void>((resolve) => {
        const stop = consumer.on(consumer.events.FETCH, () => {
          stop();
          resolve();
        });
      });
      await sub.start();
      await Promise.race([
        joined,
        new Promise((_, reject) =>
          // Joining an active group waits for every member to rejoin: up to the rebalance timeout.
          setTimeout(() => reject(new Error(`no group join within ${this.options.rebalanceTimeoutMs} ms`)), this.options.rebalanceTimeoutMs).unref(),
        ),
      ]);
    } catch (cause) {
      await sub.close().catch(() => undefined);
      throw new ConveyorError('ERR_TRANSPORT', `kafka:// could not subscribe ${channel} to ${topic}: ${(cause as Error).message}`, { cause });
    }
    this.#subs.add(sub);
    sub.whenClosed(() => this.#subs.delete(sub));
    return sub;
  }

  #republish(retry: string, message: KafkaMessage, attempts: number, id: string): Promise<void> {
    const headers: Record<string, string | Buffer> = {};
    for (const [k, v] of Object.entries(message.headers ?? {})) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v[v.length - 1]! : v;
    }
    headers[PROP.attempts] = String(attempts);
    // A foreign record's id is made from where it was read: fix it now, or the copy (read from the
    // retry topic) would get another one and dedup would see a new message.
    headers[PROP.id] = id;
    return this.#send(retry, [{ value: message.value ?? Buffer.alloc(0), headers }]);
  }

  #open(): void {
    if (this.#closing) throw new ConveyorError('ERR_CLOSED', 'kafka:// transport is closed');
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.allSettled([...this.#subs].map((s) => s.close()));
    await Promise.allSettled([...this.#pending]);
    await Promise.allSettled([this.#producer.disconnect(), this.#admin.disconnect(), this.#cluster.disconnect()]);
  }
}
