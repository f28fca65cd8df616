import { ConveyorError } from '../../core/errors.ts';
import { type ParsedUrl, queryBool } from '../../core/url.ts';

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
  /**
   * `?rebalanceTimeoutMs=`: how long the group waits for its members to rejoin in a rebalance, in ms
   * (Kafka's rebalance timeout); also how long subscribe() waits to join and fetch. @default 60000
   */
  rebalanceTimeoutMs: number;
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
  /**
   * `?start=earliest`: where a new channel (a group with no committed offset on the topic) starts —
   * `latest`, the topic's end (it sees what is published after its first subscribe, as on every
   * engine), or `earliest`, the topic's beginning (its whole retained history: Kafka's
   * `auto.offset.reset=earliest`, for a Conveyor channel reading a topic that already exists).
   * A group with commits resumes from them either way. @default 'latest'
   */
  start: 'latest' | 'earliest';
  /**
   * `?envelope=false`: publish bare records — the body as the value, no record headers at all
   * (no `conveyor-id`, `content-type`, ...) — for consumers that know nothing of Conveyor.
   * Retry copies still carry Conveyor's headers (attempts and id must survive). @default true
   */
  envelope: boolean;
  /**
   * `?bind.<topic>=<kafka topic>`: the topic's Kafka name, as is (up to 249 of `[a-zA-Z0-9._-]`,
   * which may be longer than a Conveyor name or hold names Conveyor reserves). Nothing is renamed.
   * @default none (the Conveyor name, `#ephemeral` written `__ephemeral`)
   */
  topics: ReadonlyMap<string, string>;
  /**
   * `?bind.<topic>:<channel>=<group id>`: the channel is that consumer group (an existing group
   * resumes from its committed offsets). @default none (the group `<topic>:<channel>`)
   */
  groups: ReadonlyMap<string, string>;
}

export const DEFAULT_KAFKA_PORT = 9092;

export function defaultKafkaOptions(): Omit<KafkaOptions, 'brokers' | 'ssl' | 'sasl' | 'topics' | 'groups'> {
  return {
    partitions: -1,
    replicationFactor: -1,
    sessionTimeoutMs: 30_000,
    heartbeatIntervalMs: 3_000,
    rebalanceTimeoutMs: 60_000,
    commitIntervalMs: 1_000,
    maxMessageBytes: 1_000_000,
    connectTimeoutMs: 5_000,
    requestTimeoutMs: 30_000,
    retries: 5,
    envelope: true,
    start: 'latest',
  };
}

const INTS: Record<string, readonly [number, number]> = {
  partitions: [-1, 100_000],
  replicationFactor: [-1, 100],
  sessionTimeoutMs: [1_000, 3_600_000],
  heartbeatIntervalMs: [100, 600_000],
  rebalanceTimeoutMs: [1_000, 3_600_000],
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
  const topics = new Map<string, string>();
  const groups = new Map<string, string>();
  const out: KafkaOptions = { ...defaultKafkaOptions(), brokers: [], ssl: false, sasl: undefined, topics, groups };
  const known = new Set([...Object.keys(INTS), 'brokers', 'ssl', 'sasl', 'envelope', 'start']);
  for (const [key, value] of params) {
    if (key.startsWith(BIND)) readBinding(key, value, topics, groups, bad);
    else if (!known.has(key)) bad.push(`${key}: unknown option`);
  }
  out.envelope = queryBool(params, 'envelope', true, bad);
  const start = params.get('start');
  if (start === 'latest' || start === 'earliest') out.start = start;
  else if (start !== null) bad.push(`start: expected latest or earliest, got ${JSON.stringify(start)}`);
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

/** Query keys naming existing Kafka objects (the same `bind.` form every engine reads). */
const BIND = 'bind.';
/** Kafka's own rule for topic names (and a safe one for group ids). */
const KAFKA_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/** Why `value` cannot be a bound Kafka topic or group id, or undefined when it can. */
export function badKafkaName(value: unknown, what: 'topic' | 'group id'): string | undefined {
  if (typeof value !== 'string' || !KAFKA_NAME.test(value) || value === '.' || value === '..') {
    return `expected a Kafka ${what} (1-249 of [a-zA-Z0-9._-], not "." or ".."), got ${JSON.stringify(value)}`;
  }
  if (value.startsWith(RETRY_PREFIX)) return `${JSON.stringify(value)} is a name of Conveyor's retry topics`;
  return undefined;
}

function readBinding(key: string, value: string, topics: Map<string, string>, groups: Map<string, string>, bad: string[]): void {
  const name = key.slice(BIND.length);
  // Topic and channel names never hold ':' (checkName), so it separates them.
  const [topic, channel, ...more] = name.split(':');
  if (!topic || channel === '' || more.length > 0 || !isName(topic) || (channel !== undefined && !isName(channel))) {
    bad.push(`${key}: expected bind.<topic> or bind.<topic>:<channel> with Conveyor names`);
  } else {
    const why = badKafkaName(value, channel === undefined ? 'topic' : 'group id');
    if (why) bad.push(`${key}: ${why}`);
    else if (channel === undefined) topics.set(topic, value);
    else groups.set(name, value);
  }
}

const NAME = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/;
/** The prefix of Conveyor's retry topics: no topic of its own may start with it. */
const RETRY_PREFIX = 'conveyor-retry.';
const EPHEMERAL = '__ephemeral';

function isName(name: string): boolean {
  return typeof name === 'string' && name.length > 0 && name.length <= 64 && NAME.test(name);
}

/**
 * Conveyor's naming rule (NSQ's): 1–64 of `[.a-zA-Z0-9_-]`, optionally ending in `#ephemeral`.
 * On Kafka two more, since Kafka's names use the same characters and a clash could not be told
 * apart: a name may not end in `__ephemeral` (how `#ephemeral` is written) and a topic may not
 * start with `conveyor-retry.` (the retry topics').
 */
export function checkName(kind: 'topic' | 'channel', name: string): void {
  if (!isName(name)) {
    throw new ConveyorError('ERR_BAD_NAME', `bad ${kind} name ${JSON.stringify(name)}: expected 1-64 of [.a-zA-Z0-9_-], optionally ending in #ephemeral`, {
      details: { [kind]: name },
    });
  }
  if (name.endsWith(EPHEMERAL) || (kind === 'topic' && name.startsWith(RETRY_PREFIX))) {
    throw new ConveyorError(
      'ERR_BAD_NAME',
      `bad ${kind} name ${JSON.stringify(name)} on kafka://: names ending in ${EPHEMERAL} and topics starting with ${RETRY_PREFIX} are Conveyor's own there (use bind.<topic>= for an existing topic of that name)`,
      { details: { [kind]: name } },
    );
  }
}

/** Kafka names allow `[a-zA-Z0-9._-]`: `#ephemeral` is written `__ephemeral`, which checkName keeps out of plain names. */
export function kafkaTopic(topic: string): string {
  return topic.endsWith('#ephemeral') ? `${topic.slice(0, -'#ephemeral'.length)}${EPHEMERAL}` : topic;
}

/** A topic's Kafka name: its binding, else its Conveyor name. */
export function topicName(options: Pick<KafkaOptions, 'topics'>, topic: string): string {
  return options.topics.get(topic) ?? kafkaTopic(topic);
}

/**
 * The channel's own retry topic, where nack() republishes (only that consumer group reads it):
 * `conveyor-retry.<length of topic>.<topic>.<channel>`, from Conveyor's names (a bound topic's
 * retries stay Conveyor's). The length makes the split unique — `(a.b, c)` and `(a, b.c)` were both
 * `conveyor-retry.c.a.b`-like before — and the prefix is reserved (checkName), so no topic of
 * Conveyor's can be another's retry topic. At most 15 + 2 + 1 + 75 + 1 + 75 characters (< 249).
 */
export function retryTopic(topic: string, channel: string): string {
  const t = kafkaTopic(topic);
  return `${RETRY_PREFIX}${t.length}.${t}.${kafkaTopic(channel)}`;
}

/**
 * The consumer group of a channel: its binding, else one per topic AND channel (a channel name
 * used on two topics is two channels, as on every engine). `:` is in no Conveyor name, so no two
 * pairs collide.
 */
export function groupId(topic: string, channel: string, options?: Pick<KafkaOptions, 'groups'>): string {
  return options?.groups.get(`${topic}:${channel}`) ?? `${kafkaTopic(topic)}:${kafkaTopic(channel)}`;
}
