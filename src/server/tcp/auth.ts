/**
 * AUTH as nsqd does it (nsqd/protocol_v2.go AUTH and CheckAuth, internal/auth/authorizations.go):
 * with `--auth-http-address`, IDENTIFY answers `auth_required: true`; the client's AUTH secret is
 * sent to an auth server (`GET /auth?remote_ip=&tls=&secret=&common_name=`), whose answer
 *   {"ttl": s, "identity": "...", "identity_url": "...",
 *    "authorizations": [{"topic": re, "channels": [re...], "permissions": ["subscribe"|"publish"]}]}
 * is cached for `ttl` seconds and asked again once expired. PUB/MPUB/DPUB need `publish` on a
 * topic, SUB needs `subscribe` on the topic and channel; the patterns are regular expressions
 * matched anywhere in the name, as Go's MatchString does (anchor them with ^...$ to match whole names).
 */
import { ConveyorError } from '../../core/errors.ts';

export interface BrokerAuthOptions {
  /** Auth servers, "host:port" (GET http://host:port/auth) or full URLs; one is picked at random, then the others (nsqd --auth-http-address). */
  httpAddresses: string[];
  /** How long one auth server request may take, ms (nsqd --http-client-request-timeout). @default 5000 */
  requestTimeoutMs?: number;
}

interface Authorization {
  topic: RegExp;
  channels: RegExp[];
  permissions: Set<string>;
}

export interface AuthState {
  identity: string;
  identityUrl: string;
  authorizations: Authorization[];
  /** ms since the epoch. */
  expires: number;
}

export interface AuthQuery {
  remoteIp: string;
  tls: boolean;
  commonName: string;
  secret: string;
}

export function resolveAuth(options: BrokerAuthOptions | undefined): Required<BrokerAuthOptions> | undefined {
  if (options === undefined || options.httpAddresses.length === 0) return undefined;
  for (const a of options.httpAddresses) {
    if (!/^https?:\/\//.test(a) && !/^[^/:]+:\d+$|^\[[^\]]+\]:\d+$/.test(a)) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `invalid broker options: auth-http-address: expected host:port or a URL, got ${JSON.stringify(a)}`);
    }
  }
  return { httpAddresses: [...options.httpAddresses], requestTimeoutMs: options.requestTimeoutMs ?? 5000 };
}

/** Asks the auth servers in turn, from a random one; throws with every server's failure (logged, never told the client). */
export async function queryAuth(options: Required<BrokerAuthOptions>, query: AuthQuery): Promise<AuthState> {
  const all = options.httpAddresses;
  const start = Math.floor(Math.random() * all.length);
  const failures: string[] = [];
  for (let i = 0; i < all.length; i++) {
    const address = all[(start + i) % all.length]!;
    try {
      return await queryOne(address, query, options.requestTimeoutMs);
    } catch (err) {
      failures.push(`failed to auth against ${address} - ${(err as Error).message}`);
    }
  }
  throw new Error(failures.join('; '));
}

async function queryOne(address: string, query: AuthQuery, timeoutMs: number): Promise<AuthState> {
  const params = new URLSearchParams({
    remote_ip: query.remoteIp,
    tls: query.tls ? 'true' : 'false',
    secret: query.secret,
    common_name: query.commonName,
  });
  const endpoint = address.includes('://') ? address : `http://${address}/auth`;
  const res = await fetch(`${endpoint}?${params}`, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`got response ${res.status}`);
  const data = (await res.json()) as Record<string, unknown>;
  const ttl = data.ttl;
  if (typeof ttl !== 'number' || !(ttl > 0)) throw new Error(`invalid TTL ${String(ttl)} (must be >0)`);
  const list = Array.isArray(data.authorizations) ? data.authorizations : [];
  const authorizations = list.map((a: Record<string, unknown>) => {
    const permissions = Array.isArray(a.permissions) ? (a.permissions as unknown[]) : [];
    for (const p of permissions) if (p !== 'subscribe' && p !== 'publish') throw new Error(`unknown permission ${String(p)}`);
    return {
      topic: compile(a.topic, 'topic'),
      channels: (Array.isArray(a.channels) ? a.channels : []).map((c: unknown) => compile(c, 'channel')),
      permissions: new Set(permissions as string[]),
    };
  });
  return {
    identity: typeof data.identity === 'string' ? data.identity : '',
    identityUrl: typeof data.identity_url === 'string' ? data.identity_url : '',
    authorizations,
    expires: Date.now() + ttl * 1000,
  };
}

function compile(pattern: unknown, what: string): RegExp {
  try {
    return new RegExp(String(pattern ?? ''));
  } catch (err) {
    throw new Error(`unable to compile ${what} ${JSON.stringify(pattern)} ${(err as Error).message}`);
  }
}

/** nsqd's Authorization.IsAllowed: a channel asks for subscribe, none for publish. */
export function isAllowed(state: AuthState, topic: string, channel: string): boolean {
  return state.authorizations.some((a) => {
    if (!a.permissions.has(channel === '' ? 'publish' : 'subscribe')) return false;
    if (!a.topic.test(topic)) return false;
    return a.channels.some((c) => c.test(channel));
  });
}
