import { ConveyorError } from '../../core/errors.ts';
import { type ParsedUrl, queryInts } from '../../core/url.ts';

export interface AmqpOptions {
  /** The URL handed to the client, without Conveyor's own query parameters. */
  url: string;
  /** Prefix for exchange and queue names. @default '' */
  prefix: string;
  /** Largest body, bytes. @default 8 MiB */
  maxMessageBytes: number;
  /** How long a publish waits for a lost connection to come back before failing (retryable), ms. @default 10000 */
  publishTimeoutMs: number;
  /** Reconnect backoff bounds, ms. @default 100 .. 5000 */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Queues for delayed redelivery expire this long after their last use, ms. @default 3600000 */
  retryQueueExpiresMs: number;
}

const OURS = ['prefix', 'maxMessageBytes', 'publishTimeoutMs', 'reconnectMinMs', 'reconnectMaxMs', 'retryQueueExpiresMs'] as const;

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
    retryQueueExpiresMs: num('retryQueueExpiresMs', 3_600_000),
  };
  if (problems.length) throw new ConveyorError('ERR_BAD_OPTIONS', `amqp://: ${problems.join('; ')}`, { details: { problems } });
  for (const key of OURS) url.searchParams.delete(key);
  options.url = url.href;
  return options;
}

/** The exchange of a topic. */
export function exchangeName(options: AmqpOptions, topic: string): string {
  return `${options.prefix}${topic}`;
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
