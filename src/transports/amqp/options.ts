import { ConveyorError } from '../../core/errors.ts';
import { type ParsedUrl, queryBool, queryInts } from '../../core/url.ts';

/** Where a bound topic publishes: an exchange that already exists (`''` = the default exchange) and a routing key. */
export interface AmqpTarget {
  exchange: string;
  routingKey: string;
}

export const QUEUE_TYPES = ['classic', 'quorum'] as const;
export type AmqpQueueType = (typeof QUEUE_TYPES)[number];

export interface AmqpOptions {
  /** The URL handed to the client, without Conveyor's own query parameters. */
  url: string;
  /** Prefix for exchange and queue names. @default '' */
  prefix: string;
  /** Largest body, bytes. @default 8 MiB */
  maxMessageBytes: number;
  /** How long a publish waits for a lost connection to come back before failing (retryable), ms. @default 10000 */
  publishTimeoutMs: number;
  /** Reconnect backoff bounds, ms (amqplib's recovery: doubling from min, never above max). @default 100 .. 5000 */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /**
   * Spread of each reconnect delay, a fraction of it: 0.5 draws from 50–150 % of the backoff
   * step, so clients cut at once come back spread out, not in lock-step. @default 0.5
   */
  reconnectJitter: number;
  /**
   * `?queueType=quorum`: channel queues are quorum queues (replicated, RabbitMQ's recommended
   * durable type; 3.8+). Ephemeral channels stay classic (exclusive queues cannot be quorum),
   * and so do the delay queues of `nack(delay)`. A queue that exists with another type fails
   * the subscribe (RabbitMQ's PRECONDITION_FAILED). @default 'classic'
   */
  queueType: AmqpQueueType;
  /** Queues for delayed redelivery expire this long after their last use, ms. @default 3600000 */
  retryQueueExpiresMs: number;
  /**
   * `?envelope=false`: publish bare bodies — no headers table, no content_type, no message_id —
   * for consumers that know nothing of Conveyor. Retry copies still carry Conveyor's headers.
   * @default true
   */
  envelope: boolean;
  /**
   * `?bind.<topic>=<exchange>/<routing key>`: the topic publishes to an exchange that already
   * exists, with that routing key (`bind.mailbox=/mailbox`: the default exchange, straight into
   * queue `mailbox`). Nothing is declared. A channel of the topic with no binding of its own
   * consumes the routing key's queue as is when the exchange is the default one, else its own
   * queue bound to the exchange with the routing key. @default none (Conveyor's own fanout exchange)
   */
  topics: ReadonlyMap<string, AmqpTarget>;
  /**
   * `?bind.<topic>:<channel>=<queue>`: the channel consumes a queue that already exists, as is
   * (a passive declare: any durability and arguments work), without binding it.
   * @default none (Conveyor's own queue `<prefix><topic>:<channel>`)
   */
  queues: ReadonlyMap<string, string>;
}

const OURS = ['prefix', 'maxMessageBytes', 'publishTimeoutMs', 'reconnectMinMs', 'reconnectMaxMs', 'reconnectJitter', 'queueType', 'retryQueueExpiresMs', 'envelope'] as const;
/** Query keys naming existing broker objects (the same `bind.` form every engine reads). */
export const BIND = 'bind.';

/** Reads Conveyor's options from the URL query, leaves the client's own (heartbeat, frameMax, ...) in place. */
export function parseAmqpOptions(parsed: ParsedUrl): AmqpOptions {
  const url = new URL(parsed.url.href);
  const problems: string[] = [];
  const num = queryInts(url.searchParams, problems);
  const options: AmqpOptions = {
    url: '',
    prefix: url.searchParams.get('prefix') ?? '',
    maxMessageBytes: num('maxMessageBytes', 8 * 1024 * 1024),
    publishTimeoutMs: num('publishTimeoutMs', 10_000),
    reconnectMinMs: num('reconnectMinMs', 100),
    reconnectMaxMs: num('reconnectMaxMs', 5000),
    reconnectJitter: fraction(url.searchParams, 'reconnectJitter', 0.5, problems),
    queueType: queueType(url.searchParams.get('queueType'), problems),
    retryQueueExpiresMs: num('retryQueueExpiresMs', 3_600_000),
    envelope: queryBool(url.searchParams, 'envelope', true, problems),
    topics: new Map(),
    queues: new Map(),
  };
  const topics = options.topics as Map<string, AmqpTarget>;
  const queues = options.queues as Map<string, string>;
  for (const [key, value] of [...url.searchParams]) {
    if (!key.startsWith(BIND)) continue;
    url.searchParams.delete(key);
    const name = key.slice(BIND.length);
    // Topic and channel names never hold ':' (src/engine/names.ts), so it separates them.
    const colon = name.indexOf(':');
    if (name === '' || colon === 0 || colon === name.length - 1) {
      problems.push(`${key}: expected bind.<topic> or bind.<topic>:<channel>`);
    } else if (colon > 0) {
      if (value === '') problems.push(`${key}: expected the name of an existing queue, got ""`);
      queues.set(name, value);
    } else {
      const slash = value.indexOf('/');
      if (slash < 0) problems.push(`${key}: expected <exchange>/<routing key> ("/${value}" for the default exchange), got ${JSON.stringify(value)}`);
      else if (slash === 0 && value.length === 1) problems.push(`${key}: the default exchange needs a routing key (the queue's name), got "/"`);
      else topics.set(name, { exchange: value.slice(0, slash), routingKey: value.slice(slash + 1) });
    }
  }
  if (problems.length) throw new ConveyorError('ERR_BAD_OPTIONS', `amqp://: ${problems.join('; ')}`, { details: { problems } });
  for (const key of OURS) url.searchParams.delete(key);
  options.url = url.href;
  return options;
}

function fraction(query: URLSearchParams, key: string, fallback: number, problems: string[]): number {
  const raw = query.get(key);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !(value >= 0 && value <= 1)) problems.push(`${key}: expected a number from 0 to 1, got ${JSON.stringify(raw)}`);
  return value;
}

function queueType(raw: string | null, problems: string[]): AmqpQueueType {
  if (raw === null) return 'classic';
  if ((QUEUE_TYPES as readonly string[]).includes(raw)) return raw as AmqpQueueType;
  problems.push(`queueType: expected ${QUEUE_TYPES.join(' or ')}, got ${JSON.stringify(raw)}`);
  return 'classic';
}

/** The exchange of a topic. */
export function exchangeName(options: AmqpOptions, topic: string): string {
  return `${options.prefix}${topic}`;
}

/**
 * Where a channel reads, from its bindings: an existing queue consumed as is (`declare: false`),
 * or Conveyor's own queue bound to `exchange` with `routingKey` (the topic's fanout exchange, or
 * the existing exchange the topic is bound to).
 */
export type AmqpSource = { queue: string; declare: false } | { queue: string; declare: true; exchange?: AmqpTarget };

export function channelSource(options: AmqpOptions, topic: string, channel: string): AmqpSource {
  const queue = options.queues.get(`${topic}:${channel}`);
  if (queue !== undefined) return { queue, declare: false };
  const target = options.topics.get(topic);
  if (target?.exchange === '') return { queue: target.routingKey, declare: false };
  return { queue: queueName(options, topic, channel), declare: true, ...(target ? { exchange: target } : {}) };
}

/** The durable queue of a channel, bound to its topic's exchange. */
export function queueName(options: AmqpOptions, topic: string, channel: string): string {
  return `${options.prefix}${topic}:${channel}`;
}

/**
 * Delays are rounded up to a power-of-two bucket (≥ 64 ms): one retry queue per bucket and
 * channel queue, each with a queue-wide TTL, so messages expire in FIFO order (RabbitMQ only
 * expires at the head of a queue) while the number of queues stays small.
 */
export function delayBucket(delayMs: number): number {
  if (delayMs <= 64) return 64;
  return 2 ** Math.ceil(Math.log2(delayMs));
}

export function retryQueueName(queue: string, bucket: number): string {
  return `${queue}.retry.${bucket}`;
}
