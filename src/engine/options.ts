import { ConveyorError } from '../core/errors.ts';
import type { BackendFactory } from './types.ts';

/** nsqd --mem-queue-size. */
export const DEFAULT_MEM_QUEUE_SIZE = 10_000;
/** nsqd --msg-timeout. */
export const DEFAULT_MSG_TIMEOUT_MS = 60_000;
/** nsqd --max-msg-timeout. */
export const DEFAULT_MAX_MSG_TIMEOUT_MS = 15 * 60_000;
/** nsqd --max-req-timeout. */
export const DEFAULT_MAX_REQ_TIMEOUT_MS = 60 * 60_000;
/** nsqd --max-msg-size. */
export const DEFAULT_MAX_MSG_SIZE = 1024 * 1024;
/** nsqd --max-rdy-count. */
export const DEFAULT_MAX_RDY_COUNT = 2500;
/** How often in-flight timeouts and deferred messages are looked at (nsqd's queueScanLoop runs every 100 ms). */
export const DEFAULT_SCAN_INTERVAL_MS = 100;

export interface EngineOptions {
  /**
   * Messages a topic or channel keeps in memory before the rest goes to its backend (the
   * high-water mark). 0 sends every message through the backend (nsqd's mem-queue-size=0, for
   * durability and strict order). `#ephemeral` channels keep at most this many, or maxRdyCount
   * when it is 0, and drop the rest.
   * @default 10000
   */
  memQueueSize?: number;
  /** In-flight timeout of a delivered message, ms, unless the consumer sets its own. @default 60000 */
  msgTimeoutMs?: number;
  /** Largest in-flight timeout a consumer or TOUCH may ask for, ms. @default 900000 (15 min) */
  maxMsgTimeoutMs?: number;
  /** Largest requeue (REQ) and DPUB delay, ms; longer requeue delays are capped to it. @default 3600000 (1 h) */
  maxReqTimeoutMs?: number;
  /** Largest message body, bytes; larger publishes throw ERR_TOO_LARGE. @default 1048576 (1 MiB) */
  maxMsgSize?: number;
  /** Largest RDY a consumer may set. @default 2500 */
  maxRdyCount?: number;
  /** Period of the scan that times out in-flight messages and releases deferred ones, ms. @default 100 */
  scanIntervalMs?: number;
  /**
   * Makes the queue behind each topic and channel once its memory queue is full.
   * @default an unbounded in-memory queue (nothing survives the process)
   */
  backend?: BackendFactory;
}

export interface ResolvedEngineOptions {
  readonly memQueueSize: number;
  readonly msgTimeoutMs: number;
  readonly maxMsgTimeoutMs: number;
  readonly maxReqTimeoutMs: number;
  readonly maxMsgSize: number;
  readonly maxRdyCount: number;
  readonly scanIntervalMs: number;
  readonly backend: BackendFactory | undefined;
}

export function defaultEngineOptions(): ResolvedEngineOptions {
  return {
    memQueueSize: DEFAULT_MEM_QUEUE_SIZE,
    msgTimeoutMs: DEFAULT_MSG_TIMEOUT_MS,
    maxMsgTimeoutMs: DEFAULT_MAX_MSG_TIMEOUT_MS,
    maxReqTimeoutMs: DEFAULT_MAX_REQ_TIMEOUT_MS,
    maxMsgSize: DEFAULT_MAX_MSG_SIZE,
    maxRdyCount: DEFAULT_MAX_RDY_COUNT,
    scanIntervalMs: DEFAULT_SCAN_INTERVAL_MS,
    backend: undefined,
  };
}

type NumericKey = Exclude<keyof ResolvedEngineOptions, 'backend'>;
/** Lower bound per numeric option; every one is an integer. */
const MINIMUM: Record<NumericKey, number> = {
  memQueueSize: 0,
  msgTimeoutMs: 1,
  maxMsgTimeoutMs: 1,
  maxReqTimeoutMs: 0,
  maxMsgSize: 1,
  maxRdyCount: 1,
  scanIntervalMs: 1,
};

/**
 * Validates `options` once, reporting every bad path in one ERR_BAD_OPTIONS, and returns a fresh
 * frozen object (the caller's is never changed).
 */
export function resolveEngineOptions(options: EngineOptions = {}): ResolvedEngineOptions {
  if (options === null || typeof options !== 'object') {
    throw new ConveyorError('ERR_BAD_OPTIONS', 'engine options must be an object');
  }
  const out: Record<string, unknown> = { ...defaultEngineOptions() };
  const problems: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (key === 'backend') {
      if (typeof value !== 'function') problems.push('backend: must be a function (topic, channel) => BackendQueue');
      else out.backend = value;
    } else if (key in MINIMUM) {
      const min = MINIMUM[key as NumericKey];
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
        problems.push(`${key}: must be an integer >= ${min}, got ${JSON.stringify(value)}`);
      } else out[key] = value;
    } else {
      problems.push(`${key}: unknown option`);
    }
  }
  const resolved = out as unknown as ResolvedEngineOptions;
  if (problems.length === 0 && resolved.msgTimeoutMs > resolved.maxMsgTimeoutMs) {
    problems.push(`msgTimeoutMs: ${resolved.msgTimeoutMs} is more than maxMsgTimeoutMs ${resolved.maxMsgTimeoutMs}`);
  }
  if (problems.length > 0) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `invalid engine options: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return Object.freeze(resolved);
}
