import { readFileSync } from 'node:fs';
import { ConveyorError } from '../../core/errors.ts';
import type { NsqSecurity } from './connection.ts';
import { type ParsedUrl, queryBool } from '../../core/url.ts';

/**
 * Options of the `nsq://` and `nsqlookup://` transports, from the URL's query:
 * `nsq://127.0.0.1:4150?nsqd=10.0.0.2:4150` (direct) or
 * `nsqlookup://127.0.0.1:4161?lookupd=10.0.0.3:4161&lookupIntervalMs=15000` (discovery).
 */
export interface NsqOptions {
  /** nsqd TCP addresses to publish to (the first that answers) and, with `nsq://`, consume from. */
  nsqd: HostPort[];
  /** nsqlookupd HTTP addresses (`nsqlookup://` only); consumers connect to every nsqd they list for a topic. */
  lookupd: HostPort[];
  /** `?lookupIntervalMs=`: how often nsqlookupd is asked for a topic's producers, in ms. @default 15000 */
  lookupIntervalMs: number;
  /** `?heartbeatIntervalMs=`: heartbeat asked of nsqd; two missed = the connection is dead, in ms. @default 30000 */
  heartbeatIntervalMs: number;
  /** `?connectTimeoutMs=`: dial + IDENTIFY deadline, in ms. @default 5000 */
  connectTimeoutMs: number;
  /** `?reconnectMinMs=`: first pause before redialing a lost consumer connection, doubling up to reconnectMaxMs. @default 100 */
  reconnectMinMs: number;
  /** `?reconnectMaxMs=`: longest pause between redials, in ms. @default 5000 */
  reconnectMaxMs: number;
  /**
   * `?maxMsgSize=`: largest message nsqd accepts (its --max-msg-size), in bytes, headers envelope
   * included. nsqd 1.x does not say it in IDENTIFY, so it is configured; a server that does say is
   * believed. @default 1048576
   */
  maxMsgSize: number;
  /** `?maxBodySize=`: largest MPUB body nsqd accepts (its --max-body-size), in bytes. @default 5242880 */
  maxBodySize: number;
  /**
   * `?rdyRedistributeMs=`: with fewer in-flight slots than connections, how often the slots move
   * to other connections (so no nsqd is starved), in ms. @default 5000
   */
  rdyRedistributeMs: number;
  /** `?outputBufferTimeoutMs=`: nsqd's output buffer flush timeout for consumers (0 = nsqd default 250). @default 0 */
  outputBufferTimeoutMs: number;
  /**
   * `?envelope=false`: publish bare bodies, without the headers envelope (src/core/envelope.ts),
   * for consumers that know nothing of Conveyor (nsqjs, pynsq, ansq reading `cbor2.loads(body)`).
   * Headers are then not carried: a Conveyor consumer reads such a body with its definition's
   * codec as version 1, and dead-letter reasons travel only in the logs. @default true
   */
  envelope: boolean;
  /**
   * `?tls=true`: upgrade every nsqd connection to TLS after IDENTIFY, as nsqd negotiates it (same
   * port, no separate scheme); `?tlsCa=/path/ca.pem` trusts that CA besides the system's,
   * `?tlsVerify=false` skips certificate checks (testing only), `?tlsCert=&tlsKey=` (PEM files)
   * present a client certificate (nsqd --tls-client-auth-policy). `?authSecret=` is sent with AUTH
   * when nsqd answers auth_required (URL-encode it). @default no TLS, no secret
   */
  security: NsqSecurity;
}

export interface HostPort {
  host: string;
  port: number;
}

export const DEFAULT_NSQD_PORT = 4150;
export const DEFAULT_LOOKUPD_PORT = 4161;

export function defaultNsqOptions(): Omit<NsqOptions, 'nsqd' | 'lookupd'> {
  return {
    lookupIntervalMs: 15_000,
    heartbeatIntervalMs: 30_000,
    connectTimeoutMs: 5_000,
    reconnectMinMs: 100,
    reconnectMaxMs: 5_000,
    maxMsgSize: 1_048_576,
    maxBodySize: 5_242_880,
    rdyRedistributeMs: 5_000,
    outputBufferTimeoutMs: 0,
    envelope: true,
    security: {},
  };
}

function parseSecurity(params: URLSearchParams, bad: string[]): NsqSecurity {
  const security: NsqSecurity = {};
  const tls = queryBool(params, 'tls', false, bad);
  const verify = queryBool(params, 'tlsVerify', true, bad);
  const files = ['tlsCa', 'tlsCert', 'tlsKey'] as const;
  if (!tls && (files.some((k) => params.has(k)) || params.has('tlsVerify'))) bad.push('tlsCa/tlsCert/tlsKey/tlsVerify: only with tls=true');
  if (params.has('tlsCert') !== params.has('tlsKey')) bad.push('tlsCert and tlsKey go together');
  if (tls) {
    const read: Partial<Record<(typeof files)[number], Buffer>> = {};
    for (const key of files) {
      const path = params.get(key);
      if (path === null) continue;
      try {
        read[key] = readFileSync(path);
      } catch (err) {
        bad.push(`${key}: cannot read ${JSON.stringify(path)}: ${(err as Error).message}`);
      }
    }
    security.tls = {
      rejectUnauthorized: verify,
      ...(read.tlsCa ? { ca: read.tlsCa } : {}),
      ...(read.tlsCert ? { cert: read.tlsCert } : {}),
      ...(read.tlsKey ? { key: read.tlsKey } : {}),
    };
  }
  const secret = params.get('authSecret');
  if (secret !== null) {
    if (secret === '') bad.push('authSecret: empty');
    else security.authSecret = secret;
  }
  return security;
}

const INTS: Record<string, readonly [number, number]> = {
  lookupIntervalMs: [10, 3_600_000],
  heartbeatIntervalMs: [1000, 60_000],
  connectTimeoutMs: [1, 600_000],
  reconnectMinMs: [1, 600_000],
  reconnectMaxMs: [1, 3_600_000],
  maxMsgSize: [64, 1 << 30],
  maxBodySize: [64, 1 << 30],
  rdyRedistributeMs: [10, 3_600_000],
  outputBufferTimeoutMs: [0, 60_000],
};

/** Reads and checks every option at once; reports every bad one in one ERR_BAD_OPTIONS. */
export function parseNsqOptions(parsed: ParsedUrl): NsqOptions {
  const { url, params, scheme } = parsed;
  const bad: string[] = [];
  const out: NsqOptions = { ...defaultNsqOptions(), nsqd: [], lookupd: [] };
  const lookup = scheme === 'nsqlookup';
  const known = new Set([...Object.keys(INTS), 'nsqd', 'envelope', 'tls', 'tlsCa', 'tlsCert', 'tlsKey', 'tlsVerify', 'authSecret', ...(lookup ? ['lookupd'] : [])]);
  for (const key of params.keys()) if (!known.has(key)) bad.push(`${key}: unknown option`);
  for (const [key, [min, max]] of Object.entries(INTS)) {
    const raw = params.get(key);
    if (raw === null) continue;
    const n = Number(raw);
    if (Number.isInteger(n) && n >= min && n <= max) (out as unknown as Record<string, number>)[key] = n;
    else bad.push(`${key}: expected an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  }
  out.envelope = queryBool(params, 'envelope', true, bad);
  out.security = parseSecurity(params, bad);
  const first = { host: url.hostname || '127.0.0.1', port: url.port ? Number(url.port) : lookup ? DEFAULT_LOOKUPD_PORT : DEFAULT_NSQD_PORT };
  (lookup ? out.lookupd : out.nsqd).push(first);
  for (const raw of params.getAll('nsqd')) addHostPort(out.nsqd, raw, DEFAULT_NSQD_PORT, 'nsqd', bad);
  for (const raw of params.getAll('lookupd')) addHostPort(out.lookupd, raw, DEFAULT_LOOKUPD_PORT, 'lookupd', bad);
  if (out.reconnectMinMs > out.reconnectMaxMs) bad.push('reconnectMinMs: larger than reconnectMaxMs');
  if (out.maxMsgSize > out.maxBodySize) bad.push('maxMsgSize: larger than maxBodySize');
  if (bad.length > 0) throw new ConveyorError('ERR_BAD_OPTIONS', `bad ${scheme}:// options: ${bad.join('; ')}`, { details: { bad } });
  return out;
}

function addHostPort(list: HostPort[], raw: string, defaultPort: number, key: string, bad: string[]): void {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(raw);
  const port = m?.[2] ? Number(m[2]) : defaultPort;
  if (!m || port < 1 || port > 65535) {
    bad.push(`${key}: expected host:port, got ${JSON.stringify(raw)}`);
    return;
  }
  list.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
}

const NAME = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/;

/** nsqd's rule: 1–64 of `[.a-zA-Z0-9_-]`, optionally ending in `#ephemeral`. */
export function checkName(kind: 'topic' | 'channel', name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 64 || !NAME.test(name)) {
    throw new ConveyorError('ERR_BAD_NAME', `bad ${kind} name ${JSON.stringify(name)}: expected 1-64 of [.a-zA-Z0-9_-], optionally ending in #ephemeral`, {
      details: { [kind]: name },
    });
  }
}
