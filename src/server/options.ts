/**
 * The broker's limits and defaults, named and valued as nsqd's flags (nsqd `options.go`), in
 * milliseconds and bytes. One validation reports every bad option at once; the caller's object is
 * never mutated.
 */
import { ConveyorError } from '../core/errors.ts';

export interface ProtocolLimits {
  /** Largest single message body, bytes (nsqd --max-msg-size). @default 1048576 */
  maxMsgSize: number;
  /** Largest MPUB/IDENTIFY/AUTH body and HTTP /mpub body, bytes (nsqd --max-body-size). @default 5242880 */
  maxBodySize: number;
  /** Largest RDY a client may ask for (nsqd --max-rdy-count). @default 2500 */
  maxRdyCount: number;
  /** In-flight timeout when the client does not negotiate one, ms (nsqd --msg-timeout). @default 60000 */
  msgTimeoutMs: number;
  /** Largest msg_timeout a client may negotiate, ms (nsqd --max-msg-timeout). @default 900000 */
  maxMsgTimeoutMs: number;
  /** Largest REQ / DPUB / HTTP defer delay, ms (nsqd --max-req-timeout). @default 3600000 */
  maxReqTimeoutMs: number;
  /** Idle time after which a client is dropped; heartbeats default to half of it, ms (nsqd --client-timeout). @default 60000 */
  clientTimeoutMs: number;
  /** Largest heartbeat_interval a client may negotiate, ms (nsqd --max-heartbeat-interval). @default 60000 */
  maxHeartbeatIntervalMs: number;
  /** Largest output_buffer_size a client may negotiate, bytes (nsqd --max-output-buffer-size). @default 65536 */
  maxOutputBufferSize: number;
  /** Largest output_buffer_timeout a client may negotiate, ms (nsqd --max-output-buffer-timeout). @default 30000 */
  maxOutputBufferTimeoutMs: number;
  /**
   * Open TCP connections at once, idle ones included (nsqd has no such bound); past it a new
   * connection is closed as soon as it is accepted. Idle clients go after clientTimeoutMs. @default 10000
   */
  maxConnections: number;
}

export const DEFAULT_LIMITS: Readonly<ProtocolLimits> = Object.freeze({
  maxMsgSize: 1024 * 1024,
  maxBodySize: 5 * 1024 * 1024,
  maxRdyCount: 2500,
  msgTimeoutMs: 60_000,
  maxMsgTimeoutMs: 15 * 60_000,
  maxReqTimeoutMs: 60 * 60_000,
  clientTimeoutMs: 60_000,
  maxHeartbeatIntervalMs: 60_000,
  maxOutputBufferSize: 64 * 1024,
  maxOutputBufferTimeoutMs: 30_000,
  maxConnections: 10_000,
});

/** nsqd's per-client defaults before IDENTIFY (client_v2.go): 16 KiB buffered, flushed within 250 ms. */
export const DEFAULT_OUTPUT_BUFFER_SIZE = 16 * 1024;
export const DEFAULT_OUTPUT_BUFFER_TIMEOUT_MS = 250;

/** The version reported by IDENTIFY, /info and /stats: the nsqd release whose protocol this speaks. */
export const SERVER_VERSION = '1.3.0-conveyor';

/** Fills defaults and checks every limit; throws one ERR_BAD_OPTIONS naming every bad path. */
export function resolveLimits(given: Partial<ProtocolLimits> | undefined): ProtocolLimits {
  const out: ProtocolLimits = { ...DEFAULT_LIMITS };
  const problems: string[] = [];
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof ProtocolLimits)[]) {
    const value = given?.[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      problems.push(`${key}: expected a positive integer, got ${String(value)}`);
      continue;
    }
    out[key] = value;
  }
  if (out.maxMsgSize > out.maxBodySize) problems.push('maxMsgSize: must not exceed maxBodySize');
  if (out.msgTimeoutMs > out.maxMsgTimeoutMs) problems.push('msgTimeoutMs: must not exceed maxMsgTimeoutMs');
  if (out.maxOutputBufferSize < 64) problems.push('maxOutputBufferSize: must be at least 64');
  if (problems.length > 0) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `invalid broker options: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return out;
}

/** Parses "host:port" (IPv6 as "[::1]:4150"); port 0 picks a free one. */
export function parseHostPort(value: string, what: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65535) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `${what}: expected host:port, got ${JSON.stringify(value)}`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}
