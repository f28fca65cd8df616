import { ConveyorError } from '../../core/errors.ts';
import type { ParsedUrl } from '../../core/url.ts';

/**
 * Options of the `kafka://` transport, from the URL's query
 * (`kafka://user:pass@b1:9092?brokers=b2:9092,b3:9092&sasl=scram-sha-512&ssl=true`).
 */
export interface KafkaOptions {
  /** Bootstrap brokers, `host:port`: the URL's host, then `?brokers=` (comma-separated). */
  brokers: string[];
  /** `?ssl=true`: TLS to the brokers. @default false */
  ssl: boolean;
  /** `?sasl=`: plain, scram-sha-256 or scram-sha-512, with the URL's user and password. */
  sasl: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string } | undefined;
  /** `?partitions=`: partitions of a topic Conveyor creates; -1 = the broker's num.partitions. @default -1 */
  partitions: number;
  /** `?replicationFactor=`: of a topic Conveyor creates; -1 = the broker's default. @default -1 */
  replicationFactor: number;
  /** `?sessionTimeoutMs=`: consumer group session timeout, in ms. @default 30000 */
  sessionTimeoutMs: number;
  /** `?heartbeatIntervalMs=`: consumer heartbeat, in ms. @default 3000 */
  heartbeatIntervalMs: number;
  /** `?commitIntervalMs=`: how often acked watermarks are committed, in ms (also on rebalance and close). @default 1000 */
  commitIntervalMs: number;
  /** `?maxMessageBytes=`: largest body accepted (the broker's message.max.bytes, less headers). @default 1000000 */
  maxMessageBytes: number;
  /** `?connectTimeoutMs=`: broker connection deadline, in ms. @default 5000 */
  connectTimeoutMs: number;
  /** `?requestTimeoutMs=`: a produce or admin request deadline, in ms. @default 30000 */
  requestTimeoutMs: number;
  /** `?retries=`: kafkajs retries of a failed request or connection (exponential backoff from 300 ms). @default 5 */
  retries: number;
}

export const DEFAULT_KAFKA_PORT = 9092;

export function defaultKafkaOptions(): Omit<KafkaOptions, 'brokers' | 'ssl' | 'sasl'> {
  return {
    partitions: -1,
    replicationFactor: -1,
    sessionTimeoutMs: 30_000,
    heartbeatIntervalMs: 3_000,
    commitIntervalMs: 1_000,
    maxMessageBytes: 1_000_000,
    connectTimeoutMs: 5_000,
    requestTimeoutMs: 30_000,
    retries: 5,
  };
}

const INTS: Record<string, readonly [number, number]> = {
  partitions: [-1, 100_000],
  replicationFactor: [-1, 100],
  sessionTimeoutMs: [1_000, 3_600_000],
  heartbeatIntervalMs: [100, 600_000],
  commitIntervalMs: [10, 600_000],
  maxMessageBytes: [1, 1 << 30],
  connectTimeoutMs: [1, 600_000],
  requestTimeoutMs: [1, 3_600_000],
  retries: [0, 100],
};
const MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

/** Reads and checks every option at once; reports every bad one in one ERR_BAD_OPTIONS. */
export function parseKafkaOptions(parsed: ParsedUrl): KafkaOptions {
  const { url, params } = parsed;
  const bad: string[] = [];
  const out: KafkaOptions = { ...defaultKafkaOptions(), brokers: [], ssl: false, sasl: undefined };
  const known = new Set([...Object.keys(INTS), 'brokers', 'ssl', 'sasl']);
  for (const key of params.keys()) if (!known.has(key)) bad.push(`${key}: unknown option`);
  for (const [key, [min, max]] of Object.entries(INTS)) {
    const raw = params.get(key);
    if (raw === null) continue;
    const n = Number(raw);
    if (Number.isInteger(n) && n >= min && n <= max && (n !== 0 || key === 'retries')) (out as unknown as Record<string, number>)[key] = n;
    else bad.push(`${key}: expected an integer in [${min}, ${max}] (partitions and replicationFactor: not 0), got ${JSON.stringify(raw)}`);
  }
  if (url.hostname) out.brokers.push(`${url.hostname}:${url.port || DEFAULT_KAFKA_PORT}`);
  for (const raw of (params.get('brokers') ?? '').split(',').filter(Boolean)) {
    const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(raw.trim());
    if (m) out.brokers.push(`${m[1]}:${m[2] ?? DEFAULT_KAFKA_PORT}`);
    else bad.push(`brokers: expected host:port, got ${JSON.stringify(raw)}`);
  }
  if (out.brokers.length === 0) bad.push('brokers: none given (kafka://host:9092)');
  const ssl = params.get('ssl');
  if (ssl !== null) {
    if (ssl === 'true' || ssl === 'false') out.ssl = ssl === 'true';
    else bad.push(`ssl: expected true or false, got ${JSON.stringify(ssl)}`);
  }
  const sasl = params.get('sasl');
  if (sasl !== null) {
    if (!(MECHANISMS as readonly string[]).includes(sasl)) bad.push(`sasl: expected one of ${MECHANISMS.join(', ')}, got ${JSON.stringify(sasl)}`);
    else if (!url.username) bad.push('sasl: needs a user and password in the URL');
    else {
      out.sasl = {
        mechanism: sasl as (typeof MECHANISMS)[number],
        username: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
      };
    }
  }
  if (out.heartbeatIntervalMs >= out.sessionTimeoutMs) bad.push('heartbeatIntervalMs: must be below sessionTimeoutMs');
  if (bad.length > 0) throw new ConveyorError('ERR_BAD_OPTIONS', `bad kafka:// options: ${bad.join('; ')}`, { details: { bad } });
  return out;
}

const NAME = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/;

/** Conveyor's naming rule (NSQ's): 1–64 of `[.a-zA-Z0-9_-]`, optionally ending in `#ephemeral`. */
export function checkName(kind: 'topic' | 'channel', name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 64 || !NAME.test(name)) {
    throw new ConveyorError('ERR_BAD_NAME', `bad ${kind} name ${JSON.stringify(name)}: expected 1-64 of [.a-zA-Z0-9_-], optionally ending in #ephemeral`, {
      details: { [kind]: name },
    });
  }
}

/** Kafka topic names allow `[a-zA-Z0-9._-]`: `#ephemeral` is written `-ephemeral`... with a marker no Conveyor name has. */
export function kafkaTopic(topic: string): string {
  return topic.replace('#ephemeral', '__ephemeral');
}

/** The channel's own retry topic, where nack() republishes (only that consumer group reads it). */
export function retryTopic(topic: string, channel: string): string {
  return `conveyor-retry.${kafkaTopic(channel)}.${kafkaTopic(topic)}`;
}

/**
 * The consumer group of a channel: one per topic AND channel (a channel name used on two topics
 * is two channels, as on every engine). `:` is in no Conveyor name, so no two pairs collide.
 */
export function groupId(topic: string, channel: string): string {
  return `${kafkaTopic(topic)}:${kafkaTopic(channel)}`;
}
