/**
 * The Redis backend: native hashes, sets and integers (readable with redis-cli), every write of a
 * batch in one Lua script call (see redis.lua.ts for the layout). The script computes secondary
 * key names itself, so this backend is for a single Redis (or a primary), not Redis Cluster.
 */
import { ConveyorError } from '../../core/errors.ts';
import { loadOptional } from '../../core/optional.ts';
import { type KvBackend, type ObjectKey, type ReadResult, sortSets, type StoredObject, type WriteItem, type WriteResult } from './backend.ts';
import { APPLY_SCRIPT } from './redis.lua.ts';

type IORedis = typeof import('ioredis');
type Client = import('ioredis').Redis & { kvApply(numKeys: number, ...args: string[]): Promise<string[]> };

export interface RedisBackendOptions {
  url: string;
  prefix: string;
  appliedIdsPerKey: number;
  connectTimeoutMs: number;
}

export class RedisKvBackend implements KvBackend {
  readonly name = 'redis';
  readonly #o: RedisBackendOptions;
  #client: Client | undefined;

  constructor(options: RedisBackendOptions) {
    this.#o = options;
  }

  #base(k: ObjectKey): string {
    return `${this.#o.prefix}:${k.type}:${k.bucket}:${k.key}`;
  }

  async start(): Promise<void> {
    if (this.#client) return;
    const ioredis = await loadOptional<IORedis>('ioredis', 'keyValueSink (redis://)');
    const Redis = (ioredis as unknown as { default: new (url: string, o: object) => Client }).default ?? ioredis.Redis;
    const client = new Redis(this.#o.url, {
      lazyConnect: true,
      connectTimeout: Math.min(5000, this.#o.connectTimeoutMs),
      // Fail commands at once while disconnected instead of queueing them: the sink's batch then
      // stays in flight and is retried, and the probe says when Redis is back.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A script cut off mid-reply is not re-sent behind our back: the sink retries the batch, and
      // write ids make a second apply a no-op.
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times: number) => Math.min(50 * 2 ** times, 1000),
    });
    client.on('error', () => {
      // ioredis reconnects by itself; failed commands report the outage to the sink.
    });
    client.defineCommand('kvApply', { lua: APPLY_SCRIPT });
    try {
      await client.connect();
    } catch (cause) {
      client.disconnect();
      throw outage(`cannot connect to ${safeUrl(this.#o.url)}: ${(cause as Error).message}`, cause);
    }
    this.#client = client;
  }

  #c(): Client {
    if (!this.#client) throw new ConveyorError('ERR_CLOSED', 'keyValueSink (redis): not started or closed');
    return this.#client;
  }

  async apply(items: readonly WriteItem[]): Promise<WriteResult[]> {
    const keys = items.map((it) => this.#base(it.key));
    const wire = items.map((it) =>
      it.k === 'u' ? { k: 'u', id: it.id, ops: it.ops } : it.k === 'p' ? { k: 'p', id: it.id, ts: it.ts, v: it.json } : { k: 'c', id: it.id, ts: it.ts, v: it.json, ids: it.ids, ver: it.version },
    );
    try {
      return await this.#c().kvApply(keys.length, ...keys, JSON.stringify(wire), String(this.#o.appliedIdsPerKey));
    } catch (cause) {
      throw outage(`batch of ${items.length} writes failed: ${(cause as Error).message}`, cause);
    }
  }

  async read(keys: readonly ObjectKey[], ids: readonly (readonly string[])[] = []): Promise<ReadResult[]> {
    const c = this.#c();
    try {
      const first = c.pipeline();
      keys.forEach((k, i) => {
        const h = this.#base(k);
        first.hgetall(`${h}\0t`).hgetall(h);
        for (const id of ids[i] ?? []) first.zscore(`${h}\0i`, id);
      });
      const replies = unwrap(await first.exec());
      const parsed: Array<{ meta: Record<string, string>; data: Record<string, string>; applied: boolean[] }> = [];
      let at = 0;
      for (let i = 0; i < keys.length; i++) {
        const meta = replies[at++] as Record<string, string>;
        const data = replies[at++] as Record<string, string>;
        const applied = (ids[i] ?? []).map(() => replies[at++] !== null);
        parsed.push({ meta, data, applied });
      }
      // Set members live in their own keys: one more round trip, only for maps that have sets.
      const second = c.pipeline();
      const setPaths: Array<[number, string]> = [];
      parsed.forEach(({ meta }, i) => {
        for (const [p, t] of Object.entries(meta)) {
          if (t === 'set' && !p.startsWith('\0')) {
            setPaths.push([i, p]);
            second.smembers(`${this.#base(keys[i]!)}\0s${p}`);
          }
        }
      });
      const members = setPaths.length ? (unwrap(await second.exec()) as string[][]) : [];
      const sets = new Map<string, string[]>();
      for (const [n, [i, p]] of setPaths.entries()) sets.set(`${i}\0${p}`, members[n]!);
      return parsed.map(({ meta, data, applied }, i) => ({ stored: toStored(meta, data, (p) => sets.get(`${i}\0${p}`) ?? []), applied }));
    } catch (cause) {
      throw outage(`read failed: ${(cause as Error).message}`, cause);
    }
  }

  async probe(): Promise<boolean> {
    try {
      await this.#c().ping();
      return true;
    } catch {
      return false;
    }
  }

  async remove(keys: readonly ObjectKey[]): Promise<void> {
    const c = this.#c();
    for (const k of keys) {
      const h = this.#base(k);
      const meta = await c.hgetall(`${h}\0t`);
      const sets = Object.entries(meta).filter(([p, t]) => t === 'set' && !p.startsWith('\0')).map(([p]) => `${h}\0s${p}`);
      await c.del(h, `${h}\0t`, `${h}\0i`, ...sets);
    }
  }

  async dropAll(): Promise<void> {
    const c = this.#c();
    let cursor = '0';
    do {
      const [next, keys] = await c.scan(cursor, 'MATCH', `${this.#o.prefix.replace(/[*?[\]\\]/g, '\\$&')}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await c.del(...keys);
    } while (cursor !== '0');
  }

  async close(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    if (c) await c.quit().catch(() => c.disconnect());
  }
}

function toStored(meta: Record<string, string>, data: Record<string, string>, members: (path: string) => string[]): StoredObject | undefined {
  const kind = meta[''];
  if (kind !== 'map' && kind !== 'value') return undefined;
  const common = { timestamp: Number(meta['\0ts'] ?? 0), id: meta['\0id'] ?? '', version: Number(meta['\0seq'] ?? 0) };
  if (kind === 'value') return { kind, value: JSON.parse(data[''] ?? 'null'), ...common };
  const root: Record<string, unknown> = {};
  // Sorted so that a map's marker comes before its fields.
  for (const [p, t] of Object.entries(meta).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (p === '' || p.startsWith('\0')) continue;
    const path = p.split('.');
    let node = root;
    for (const seg of path.slice(0, -1)) node = (node[seg] ??= {}) as Record<string, unknown>;
    const last = path[path.length - 1]!;
    if (t === 'map') node[last] ??= {};
    else if (t === 'counter') node[last] = Number(data[p] ?? 0);
    else if (t === 'flag') node[last] = data[p] === '1';
    else if (t === 'register') node[last] = data[p] ?? '';
    else if (t === 'set') node[last] = members(p);
  }
  return { kind, value: sortSets(root), ...common };
}

function unwrap(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('pipeline aborted');
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}

/** Replies that mean "Redis cannot serve now" (loading, busy, failing over, out of memory): wait and retry. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|CLUSTERDOWN|TRYAGAIN|OOM|NOREPLICAS|NOSCRIPT)\b/;

/**
 * Connection trouble and transient replies are the store's (retryable: the batch stays in flight).
 * Any other error reply refused what was sent — writes that do not fit come back in-band from the
 * script, so this is a batch Redis cannot take (too large an argument, say): not retryable, so the
 * runtime splits the batch until the culprit stands alone and dead-letters it.
 */
function outage(message: string, cause: unknown): ConveyorError {
  const reply = (cause as { name?: unknown })?.name === 'ReplyError' ? String((cause as Error).message) : undefined;
  const refused = reply !== undefined && !TRANSIENT_REPLY.test(reply);
  return new ConveyorError('ERR_SINK', `keyValueSink (redis): ${message}`, { cause, retryable: !refused, details: refused ? { kind: 'bad-value' } : undefined });
}

function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.host;
  } catch {
    return 'redis';
  }
}
