import { ConveyorError } from '../core/errors.ts';
import type { Binding, Transport } from '../core/transport.ts';
import { type BackoffOptions, DEFAULT_BACKOFF } from './backoff.ts';
import type { DedupStore } from './dedup-store.ts';
import type { Middleware } from './types.ts';

/** Defaults follow nsqjs/nsqd where they apply (max in flight, 60 s in-flight timeout). */
export const DEFAULT_CONCURRENCY = 16;
export const DEFAULT_MAX_IN_FLIGHT = 64;
export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_ATTEMPTS = 5;
export const DEFAULT_BATCH_SIZE = 1000;
export const DEFAULT_BATCH_WAIT_MS = 500;
export const DEFAULT_BATCH_BYTES = 8 * 1024 * 1024;
/** A stalled broker socket must not hold a publish for the ~60 s a heartbeat takes to notice. */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 10_000;

export interface RetryConfig {
  /** Deliveries in all, the first included, before a message is dead-lettered. @default 5 */
  attempts?: number;
  backoff?: Partial<BackoffOptions>;
}

export interface ConsumeOptions {
  /** The channel (NSQ channel, AMQP queue, consumer group, ...). */
  channel: string;
  /** Handlers running at once. @default 16 */
  concurrency?: number;
  /** Deliveries held unacked at once, running or waiting; ≥ concurrency. @default max(64, concurrency) */
  maxInFlight?: number;
  /** The broker's in-flight timeout, ms; the runtime touches handlers running past half of it. @default 60000 */
  timeoutMs?: number;
  /** Hard deadline for one handler run, ms: past it the signal aborts and the run fails (retryable). @default 5 × timeoutMs */
  handlerTimeoutMs?: number;
  retry?: RetryConfig;
  /** `true` (default) → `<topic>.dead`; `{ topic }` to name it; `false` → ack and emit 'discarded' when out of attempts. */
  deadLetter?: boolean | { topic: string };
  /** Skip ids already processed: `true` for an in-memory store, or a store of your own. @default false */
  dedup?: boolean | DedupStore;
  /** Your middleware, run inside retry/dead-letter/dedup and outside the timeout. */
  middleware?: Middleware[];
  /**
   * Read from names that already exist on the engine, for this consumer only (the URL's
   * `bind.` query does it for every consumer): `{ channel: 'mailbox' }` consumes RabbitMQ queue
   * `mailbox` as is, `{ topic: 'ORDERS/orders.eu.>' }` a NATS stream and filter. The forms per
   * engine are in docs/interop.md; an engine that cannot bind refuses it (ERR_BAD_OPTIONS).
   * @default none
   */
  bind?: Binding;
}

export interface BatchOptions {
  /** Flush at this many messages. @default 1000 */
  maxSize?: number;
  /** Flush when the oldest message has waited this long, ms. @default 500 */
  maxWaitMs?: number;
  /** Flush at this many body bytes. @default 8 MiB */
  maxBytes?: number;
  /**
   * Batches handed to the handler at once. 2 overlaps one batch's commit with the next one's
   * work; order across batches is then not kept (sinks here are idempotent on the id). @default 1
   */
  concurrency?: number;
}

export interface ConsumeBatchOptions extends Omit<ConsumeOptions, 'concurrency' | 'dedup' | 'middleware' | 'handlerTimeoutMs'> {
  batch?: BatchOptions;
}

export interface ResolvedConsume {
  channel: string;
  concurrency: number;
  maxInFlight: number;
  timeoutMs: number;
  handlerTimeoutMs: number;
  attempts: number;
  backoff: BackoffOptions;
  deadLetterTopic: string | false;
  dedup: DedupStore | undefined;
  middleware: Middleware[];
  batch: Required<BatchOptions>;
  bind: Binding | undefined;
}

function positiveInt(problems: string[], path: string, value: unknown): void {
  if (value !== undefined && (!Number.isInteger(value) || (value as number) < 1)) {
    problems.push(`${path}: must be a positive integer, got ${JSON.stringify(value)}`);
  }
}

/** A consumer's `bind` on a transport that does not read bindings would be ignored: refused instead. */
export function checkBindable(transport: Transport, topic: string, bind: Binding | undefined): void {
  if (bind === undefined || transport.features.bind) return;
  throw new ConveyorError('ERR_BAD_OPTIONS', `consume(${topic}): bind: ${transport.kind}:// does not read bindings (features.bind is not set)`, {
    details: { kind: transport.kind, bind },
  });
}

/** Validates once, reporting every bad path together; never mutates what the caller passed. */
export function resolveConsumeOptions(
  topic: string,
  options: ConsumeOptions & { batch?: BatchOptions },
  makeDedup: () => DedupStore,
): ResolvedConsume {
  const problems: string[] = [];
  if (typeof options?.channel !== 'string' || options.channel === '') problems.push('channel: must be a non-empty string');
  positiveInt(problems, 'concurrency', options.concurrency);
  positiveInt(problems, 'maxInFlight', options.maxInFlight);
  positiveInt(problems, 'timeoutMs', options.timeoutMs);
  positiveInt(problems, 'handlerTimeoutMs', options.handlerTimeoutMs);
  positiveInt(problems, 'retry.attempts', options.retry?.attempts);
  const backoff = { ...DEFAULT_BACKOFF, ...options.retry?.backoff };
  for (const key of ['initialMs', 'maxMs', 'factor'] as const) {
    if (!(Number.isFinite(backoff[key]) && backoff[key] >= 0)) problems.push(`retry.backoff.${key}: must be a number ≥ 0`);
  }
  if (!(backoff.jitter >= 0 && backoff.jitter <= 1)) problems.push('retry.backoff.jitter: must be between 0 and 1');
  const batch = {
    maxSize: options.batch?.maxSize ?? DEFAULT_BATCH_SIZE,
    maxWaitMs: options.batch?.maxWaitMs ?? DEFAULT_BATCH_WAIT_MS,
    maxBytes: options.batch?.maxBytes ?? DEFAULT_BATCH_BYTES,
    concurrency: options.batch?.concurrency ?? 1,
  };
  positiveInt(problems, 'batch.maxSize', options.batch?.maxSize);
  positiveInt(problems, 'batch.maxWaitMs', options.batch?.maxWaitMs);
  positiveInt(problems, 'batch.maxBytes', options.batch?.maxBytes);
  positiveInt(problems, 'batch.concurrency', options.batch?.concurrency);
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const maxInFlight = options.maxInFlight ?? Math.max(DEFAULT_MAX_IN_FLIGHT, concurrency, options.batch ? batch.maxSize * 2 : 0);
  if (options.maxInFlight !== undefined && options.concurrency !== undefined && options.maxInFlight < options.concurrency) {
    problems.push(`maxInFlight: must be ≥ concurrency (${options.concurrency}), got ${options.maxInFlight}`);
  }
  if (options.batch && maxInFlight < batch.maxSize) {
    problems.push(`maxInFlight: must be ≥ batch.maxSize (${batch.maxSize}) or batches could never fill, got ${maxInFlight}`);
  }
  const dl = options.deadLetter ?? true;
  if (typeof dl === 'object' && (typeof dl.topic !== 'string' || dl.topic === '')) problems.push('deadLetter.topic: must be a non-empty string');
  const bind = options.bind;
  if (bind !== undefined && (typeof bind !== 'object' || bind === null)) problems.push('bind: must be an object { topic?, channel? }');
  for (const key of ['topic', 'channel'] as const) {
    const v = bind?.[key];
    if (v !== undefined && (typeof v !== 'string' || v === '')) problems.push(`bind.${key}: must be a non-empty string`);
  }
  if (problems.length) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `consume(${topic}): ${problems.join('; ')}`, { details: { problems } });
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    channel: options.channel,
    concurrency,
    maxInFlight,
    timeoutMs,
    handlerTimeoutMs: options.handlerTimeoutMs ?? timeoutMs * 5,
    attempts: options.retry?.attempts ?? DEFAULT_ATTEMPTS,
    backoff,
    deadLetterTopic: dl === false ? false : dl === true ? `${topic}.dead` : dl.topic,
    dedup: options.dedup === true ? makeDedup() : options.dedup || undefined,
    middleware: [...(options.middleware ?? [])],
    batch,
    bind: bind === undefined ? undefined : { ...bind },
  };
}

/**
 * The app's `publishTimeoutMs`: a positive number of ms, or `Infinity` for no deadline.
 * Throws ERR_BAD_OPTIONS otherwise.
 */
export function resolvePublishTimeout(value: unknown): number {
  if (value === undefined) return DEFAULT_PUBLISH_TIMEOUT_MS;
  if (typeof value === 'number' && value > 0 && (Number.isFinite(value) || value === Number.POSITIVE_INFINITY)) {
    // setTimeout caps delays at 2^31-1 ms and fires at once past it; so long is no deadline.
    return value > 2 ** 31 - 1 ? Number.POSITIVE_INFINITY : value;
  }
  throw new ConveyorError('ERR_BAD_OPTIONS', `app: publishTimeoutMs must be a positive number of ms or Infinity, got ${JSON.stringify(value) ?? String(value)}`, {
    details: { problems: ['publishTimeoutMs'] },
  });
}
