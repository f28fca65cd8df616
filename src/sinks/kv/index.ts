/**
 * A key-value sink with Riak's data model: bucket type → bucket → key, each key holding either a
 * map of datatypes (registers, counters, sets, flags, nested maps) changed by operations, or a
 * plain JSON value merged by a conflict resolver (default: last write wins by message timestamp).
 * Backends: Redis (native hashes and sets, one Lua script per batch) and PostgreSQL (one jsonb row
 * per key, one statement per batch). Riak itself is not a backend: it cannot be installed here,
 * and no client ships that no test has run against.
 *
 * Batches and acks work as in the PostgreSQL sink: `app.consumeBatch(Msg, opts, sink.handler(fn))`
 * resolves only after the store answered, so the runtime acks only what is stored; a store outage
 * is a retryable ERR_SINK (the batch stays in flight, probed, retried without limit).
 *
 * Idempotent on the message id: every write carries an id (the message id) and each object keeps
 * its last `appliedIdsPerKey` applied ids; a write whose id is among them is skipped, so a
 * redelivered or retried message does not count twice or re-add a removed set member.
 *
 * A write that does not fit (an operation on a field of another type, a map operation on a plain
 * value, a value the store cannot hold) is a non-retryable ERR_SINK with `details.kind`
 * 'wrong-type' or 'bad-value': the runtime splits the batch until that message stands alone and
 * dead-letters it; the others are stored (their second apply during the split is a no-op).
 */
import { ConveyorError } from '../../core/errors.ts';
import type { BatchContext, BatchHandler, BatchMessage } from '../../runtime/batch-consumer.ts';
import type { KvBackend, ObjectKey, WriteItem, WriteResult } from './backend.ts';
import { PostgresKvBackend } from './postgres.ts';
import { RedisKvBackend } from './redis.ts';
import { badInput, checkJson, checkName, flatten, type MapOp, type PathOp } from './ops.ts';

export type { ObjectKey } from './backend.ts';
export { counter, flag, map, type MapOp, register, set } from './ops.ts';

/** A plain value with the message that wrote it, as a resolver sees it. */
export interface Sibling<V = unknown> {
  readonly value: V;
  /** The message's timestamp, ms since the epoch. */
  readonly timestamp: number;
  /** The message id (the write id). */
  readonly id: string;
}

/** Merges the stored value with an incoming one (Riak's conflict resolver). Must be deterministic. */
export type Resolver<V = unknown> = (stored: Sibling<V>, incoming: Sibling<V>) => V;

export interface KeyValueSinkOptions {
  /** `redis://host:6379` or `postgres://user@host:5432/db`. */
  url: string;
  /** Redis: prefix of every key. @default 'conveyor:kv' */
  prefix?: string;
  /** PostgreSQL: the table (created with its apply function on start). @default 'conveyor_kv' */
  table?: string;
  /**
   * Applied write ids kept per key (the idempotence window). A redelivery is recognised while
   * fewer than this many other writes reached the same key after it; keep it ≥ batch.maxSize ×
   * batch.concurrency × consumers writing the key. @default 1024
   */
  appliedIdsPerKey?: number;
  /** How long `start()` waits for the store, ms. @default 30000 */
  connectTimeoutMs?: number;
  /** While the store is unreachable, how often it is probed, ms. @default 250 */
  probeIntervalMs?: number;
  /** PostgreSQL: connections in the pool. @default 2 */
  poolSize?: number;
}

export const DEFAULT_KV = { prefix: 'conveyor:kv', table: 'conveyor_kv', appliedIdsPerKey: 1024, connectTimeoutMs: 30_000, probeIntervalMs: 250, poolSize: 2 } as const;

const WRITE = Symbol('kv.write');

/** A write built by a bucket, applied by the sink (in a batch handler or `sink.write`). */
export type KvWrite =
  | { readonly [WRITE]: true; readonly key: ObjectKey; readonly kind: 'update'; readonly ops: readonly PathOp[] }
  | { readonly [WRITE]: true; readonly key: ObjectKey; readonly kind: 'put'; readonly json: string; readonly value: unknown; readonly resolve?: Resolver };

/** A write with its id and timestamp, for `sink.write`. */
export interface IdentifiedWrite {
  readonly write: KvWrite;
  readonly id: string;
  /** ms since the epoch. @default Date.now() */
  readonly timestamp?: number;
}

const BUCKET_NAME = /^[^:\u0000]{1,512}$/;

export class Bucket<V = unknown> {
  readonly #sink: KeyValueSink;
  readonly type: string;
  readonly name: string;
  readonly #resolve: Resolver<V> | undefined;

  constructor(sink: KeyValueSink, type: string, name: string, resolve?: Resolver<V>) {
    const problems: string[] = [];
    if (!BUCKET_NAME.test(type ?? '')) problems.push(`type: 1–512 characters without ':', got ${JSON.stringify(type)}`);
    if (!BUCKET_NAME.test(name ?? '')) problems.push(`name: 1–512 characters without ':', got ${JSON.stringify(name)}`);
    if (resolve !== undefined && typeof resolve !== 'function') problems.push('resolve: must be a function');
    if (problems.length) throw new ConveyorError('ERR_BAD_OPTIONS', `keyValueSink.bucket: ${problems.join('; ')}`, { details: { problems } });
    this.#sink = sink;
    this.type = type;
    this.name = name;
    this.#resolve = resolve;
  }

  #key(key: string): ObjectKey {
    return { type: this.type, bucket: this.name, key: checkName('key', key) };
  }

  /** Datatype operations on the map at `key` (created on first use). Throws a typed error for bad input. */
  update(key: string, ops: readonly MapOp[]): KvWrite {
    return { [WRITE]: true, key: this.#key(key), kind: 'update', ops: flatten(ops) };
  }

  /** A plain JSON value at `key`, merged with what is stored by the bucket's resolver (default: last write wins). */
  put(key: string, value: V): KvWrite {
    checkJson(value);
    return { [WRITE]: true, key: this.#key(key), kind: 'put', value, json: JSON.stringify(value), resolve: this.#resolve as Resolver | undefined };
  }

  /** The map (plain JSON, sets as sorted arrays) or value at `key`, or undefined. */
  async get(key: string): Promise<unknown> {
    const [r] = await this.#sink.read([this.#key(key)]);
    return r?.stored?.value;
  }

  /** Deletes `key` (with its applied ids). */
  delete(key: string): Promise<void> {
    return this.#sink.remove([this.#key(key)]);
  }
}

interface Planned {
  readonly msg: number;
  readonly write: KvWrite;
  readonly id: string;
  readonly ts: number;
}

export class KeyValueSink {
  readonly #o: Required<Omit<KeyValueSinkOptions, 'url'>> & { url: string };
  readonly #backend: KvBackend;
  #started: Promise<void> | undefined;
  #probing: Promise<boolean> | undefined;

  constructor(options: KeyValueSinkOptions) {
    const o = { ...DEFAULT_KV, ...options };
    const problems: string[] = [];
    let scheme = '';
    try {
      scheme = new URL(o.url).protocol;
    } catch {
      // reported below
    }
    if (!['redis:', 'rediss:', 'postgres:', 'postgresql:'].includes(scheme)) {
      throw new ConveyorError('ERR_BAD_URL', `keyValueSink: url must be redis://, rediss://, postgres:// or postgresql://, got ${JSON.stringify(options.url)}`);
    }
    if (!Number.isInteger(o.appliedIdsPerKey) || o.appliedIdsPerKey < 1) problems.push(`appliedIdsPerKey: must be a positive integer, got ${o.appliedIdsPerKey}`);
    if (!(Number.isFinite(o.probeIntervalMs) && o.probeIntervalMs >= 10)) problems.push(`probeIntervalMs: must be ≥ 10, got ${o.probeIntervalMs}`);
    if (!(Number.isFinite(o.connectTimeoutMs) && o.connectTimeoutMs >= 0)) problems.push(`connectTimeoutMs: must be ≥ 0, got ${o.connectTimeoutMs}`);
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*(\.[a-zA-Z_][a-zA-Z0-9_]*)?$/.test(o.table)) problems.push(`table: must be a plain SQL identifier, got ${JSON.stringify(o.table)}`);
    if (typeof o.prefix !== 'string' || o.prefix.includes('\u0000')) problems.push('prefix: must be a string without U+0000');
    if (!Number.isInteger(o.poolSize) || o.poolSize < 1) problems.push(`poolSize: must be a positive integer, got ${o.poolSize}`);
    if (problems.length) throw new ConveyorError('ERR_BAD_OPTIONS', `keyValueSink: ${problems.join('; ')}`, { details: { problems } });
    this.#o = o;
    this.#backend = scheme.startsWith('redis') ? this.#redis() : this.#postgres();
  }

  #redis(): KvBackend {
    return new RedisKvBackend({ url: this.#o.url, prefix: this.#o.prefix, appliedIdsPerKey: this.#o.appliedIdsPerKey, connectTimeoutMs: this.#o.connectTimeoutMs });
  }

  #postgres(): KvBackend {
    return new PostgresKvBackend({ url: this.#o.url, table: this.#o.table, appliedIdsPerKey: this.#o.appliedIdsPerKey, poolSize: this.#o.poolSize });
  }

  /** 'redis' or 'postgres'. */
  get backend(): string {
    return this.#backend.name;
  }

  /**
   * A bucket of a bucket type (Riak's namespaces). `resolve` merges plain values written with
   * `put` (read, merge here, compare-and-set: two round trips per batch); without it the store
   * keeps the write with the newest message timestamp (ties: the larger id), in one round trip.
   */
  bucket<V = unknown>(type: string, name: string, options: { resolve?: Resolver<V> } = {}): Bucket<V> {
    return new Bucket<V>(this, type, name, options.resolve);
  }

  /**
   * The batch handler for `app.consumeBatch`: `fn` turns each message into its writes (or none).
   * Resolves after the store answered for the whole batch. Carries the outage probe.
   *
   * @example
   * const sink = keyValueSink({ url: 'redis://127.0.0.1:6379' });
   * const users = sink.bucket('maps', 'users');
   * await app.consumeBatch(Visit, { channel: 'kv', batch: { maxSize: 500 } }, sink.handler((v) =>
   *   users.update(v.user, [counter('visits').increment(), set('pages').add(v.page), register('last').assign(v.page)])));
   */
  handler<T>(fn: (value: T, message: BatchMessage) => KvWrite | readonly KvWrite[] | undefined): BatchHandler<T> {
    if (typeof fn !== 'function') throw new ConveyorError('ERR_BAD_OPTIONS', 'keyValueSink.handler: needs a function (value, message) => writes');
    return Object.assign((values: T[], ctx: BatchContext) => this.#batch(values, ctx, fn), {
      probe: { intervalMs: this.#o.probeIntervalMs, ready: () => this.#probe() },
    });
  }

  async #batch<T>(values: T[], ctx: BatchContext, fn: (value: T, message: BatchMessage) => KvWrite | readonly KvWrite[] | undefined): Promise<void> {
    const failures = new Map<number, unknown>();
    const planned: Planned[] = [];
    for (let i = 0; i < values.length; i++) {
      const message = ctx.messages[i]!;
      let writes: readonly KvWrite[];
      try {
        const out = fn(values[i]!, message);
        writes = out === undefined ? [] : isWrite(out) ? [out] : (out as readonly KvWrite[]);
        if (!Array.isArray(writes) || !writes.every(isWrite)) throw badInput('bad-value', 'handler: fn must return a write (bucket.update/put), an array of them, or nothing');
      } catch (error) {
        failures.set(i, error);
        continue;
      }
      planned.push(...identify(writes, message.id, message.timestamp, i));
    }
    await this.#ensureStarted();
    const results = await this.#apply(planned);
    results.forEach((r, n) => {
      if (r.startsWith('err:') && !failures.has(planned[n]!.msg)) failures.set(planned[n]!.msg, resultError(r, planned[n]!.write.key));
    });
    if (failures.size === 0) return;
    const [first] = failures.values();
    if (values.length === 1 || failures.size === 1 && isRetryableError(first)) throw first;
    if ([...failures.values()].some(isRetryableError)) throw first;
    throw new ConveyorError('ERR_SINK', `keyValueSink: ${failures.size} of ${values.length} messages do not fit the store; first: ${(first as Error).message}`, {
      retryable: false,
      cause: first,
      details: { kind: 'batch', failed: failures.size },
    });
  }

  /** Applies writes outside a pipeline (each with its id): results are 'ok', 'dup', 'stale' or 'err:<kind>:<reason>'. */
  async write(writes: readonly IdentifiedWrite[]): Promise<WriteResult[]> {
    await this.#ensureStarted();
    const planned = writes.map((w, i) => ({ msg: i, write: w.write, id: w.id, ts: w.timestamp ?? Date.now() }));
    return this.#apply(planned);
  }

  async #apply(planned: readonly Planned[]): Promise<WriteResult[]> {
    const results: WriteResult[] = new Array(planned.length).fill('');
    const direct: number[] = [];
    const resolved = new Map<string, number[]>(); // key → planned indices with a resolver, in order
    planned.forEach((p, n) => {
      if (p.write.kind === 'put' && p.write.resolve) {
        const k = keyString(p.write.key);
        let list = resolved.get(k);
        if (!list) resolved.set(k, (list = []));
        list.push(n);
      } else direct.push(n);
    });
    const items: WriteItem[] = direct.map((n) => toItem(planned[n]!));
    let groups = [...resolved.values()];
    let cas = groups.length ? await this.#resolveGroups(planned, groups, results) : [];
    if (items.length || cas.length) {
      const out = await this.#applyChunked([...items, ...cas.map((c) => c.item)]);
      for (const [i, n] of direct.entries()) results[n] = out[i]!;
      groups = [];
      cas.forEach((c, i) => {
        const r = out[items.length + i]!;
        if (r === 'conflict') groups.push(c.group);
        else for (const n of c.group) results[n] ||= r;
      });
    }
    // Someone else changed a resolved key between our read and our write: read and merge again.
    // A random pause between rounds (growing, at most 50 ms) keeps two writers from colliding in
    // lock step, as optimistic concurrency does elsewhere; past 32 rounds the batch is retried whole.
    for (let round = 0; groups.length > 0; round++) {
      if (round >= 32) throw new ConveyorError('ERR_SINK', `keyValueSink: ${groups.length} keys kept changing under the resolver (32 rounds)`, { retryable: true });
      if (round > 0) await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** round)));
      cas = await this.#resolveGroups(planned, groups, results);
      if (cas.length === 0) break;
      const out = await this.#applyChunked(cas.map((c) => c.item));
      groups = [];
      cas.forEach((c, i) => {
        if (out[i] === 'conflict') groups.push(c.group);
        else for (const n of c.group) results[n] ||= out[i]!;
      });
    }
    return results;
  }

  /**
   * One round trip per batch — unless the batch's payload passes CHUNK_BYTES, where it goes in
   * several (each write is idempotent on its id, so a retry after a partial success is safe):
   * Redis refuses an argument past 512 MB and PostgreSQL a jsonb past 255 MB.
   */
  async #applyChunked(items: readonly WriteItem[]): Promise<WriteResult[]> {
    const out: WriteResult[] = [];
    for (let from = 0; from < items.length; ) {
      let to = from;
      let bytes = 0;
      while (to < items.length && (to === from || bytes + approxBytes(items[to]!) <= CHUNK_BYTES)) bytes += approxBytes(items[to++]!);
      out.push(...(await this.#backend.apply(items.slice(from, to))));
      from = to;
    }
    return out;
  }

  /** Reads each key once, folds its unapplied puts through the resolver, and makes one versioned write per key. */
  async #resolveGroups(planned: readonly Planned[], groups: readonly number[][], results: WriteResult[]): Promise<Array<{ item: WriteItem; group: number[] }>> {
    const keys = groups.map((g) => planned[g[0]!]!.write.key);
    const read = await this.#backend.read(keys, groups.map((g) => g.map((n) => planned[n]!.id)));
    const cas: Array<{ item: WriteItem; group: number[] }> = [];
    groups.forEach((group, gi) => {
      const { stored, applied } = read[gi]!;
      if (stored?.kind === 'map') {
        for (const n of group) results[n] = 'err:wrong-type:the key holds a map, not a plain value';
        return;
      }
      let acc: Sibling | undefined = stored ? { value: stored.value, timestamp: stored.timestamp, id: stored.id } : undefined;
      const ids: string[] = [];
      const live: number[] = [];
      group.forEach((n, i) => {
        const p = planned[n]!;
        if (applied[i]) {
          results[n] = 'dup';
          return;
        }
        const write = p.write as Extract<KvWrite, { kind: 'put' }>;
        const incoming: Sibling = { value: write.value, timestamp: p.ts, id: p.id };
        try {
          const value = acc ? write.resolve!(acc, incoming) : incoming.value;
          checkJson(value, 'resolved value');
          acc = { value, timestamp: Math.max(acc?.timestamp ?? 0, p.ts), id: p.id };
          ids.push(p.id);
          live.push(n);
        } catch (error) {
          results[n] = `err:bad-value:the resolver failed: ${(error as Error).message}`;
        }
      });
      if (!acc || live.length === 0) return;
      cas.push({
        item: { k: 'c', key: keys[gi]!, id: acc.id, ts: acc.timestamp, json: JSON.stringify(acc.value), ids, version: stored?.version ?? 0 },
        group: live,
      });
    });
    return cas;
  }

  /** Reads objects (in one round trip where the backend can). */
  async read(keys: readonly ObjectKey[]) {
    await this.#ensureStarted();
    return this.#backend.read(keys);
  }

  async remove(keys: readonly ObjectKey[]): Promise<void> {
    await this.#ensureStarted();
    await this.#backend.remove(keys);
  }

  /** Deletes everything this sink stores: every key under its Redis prefix, or its PostgreSQL table and function. */
  async dropAll(): Promise<void> {
    await this.#ensureStarted();
    await this.#backend.dropAll();
  }

  /**
   * Connects, waiting for the store up to connectTimeoutMs (PostgreSQL: creates the table and its
   * apply function). Bad credentials or a missing database fail at once.
   */
  start(): Promise<void> {
    this.#started ??= this.#connect().catch((error: unknown) => {
      this.#started = undefined;
      throw error;
    });
    return this.#started;
  }

  #ensureStarted(): Promise<void> {
    return this.#started ?? this.start();
  }

  async #connect(): Promise<void> {
    const deadline = Date.now() + this.#o.connectTimeoutMs;
    let delay = Math.min(100, this.#o.probeIntervalMs);
    for (;;) {
      try {
        await this.#backend.start();
        return;
      } catch (error) {
        if (!isRetryableError(error)) throw error;
        if (Date.now() + delay > deadline) {
          throw new ConveyorError('ERR_SINK', `keyValueSink: store not reachable within ${this.#o.connectTimeoutMs} ms: ${(error as Error).message}`, { cause: error });
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(this.#o.probeIntervalMs, delay * 2);
      }
    }
  }

  /** Is the store back? One probe in flight per sink; before the first connect, start() does the waiting. */
  #probe(): Promise<boolean> {
    if (!this.#started) return Promise.resolve(true);
    this.#probing ??= this.#started
      .then(() => this.#backend.probe(), () => false)
      .finally(() => {
        this.#probing = undefined;
      });
    return this.#probing;
  }

  async close(): Promise<void> {
    const started = this.#started;
    this.#started = undefined;
    await started?.catch(() => undefined);
    await this.#backend.close();
  }
}

/**
 * @example
 * const sink = keyValueSink({ url: 'postgres://postgres@127.0.0.1:5432/test' });
 * const counts = sink.bucket('maps', 'pages');
 * await app.consumeBatch(View, { channel: 'kv' }, sink.handler((v) => counts.update(v.page, [counter('views').increment()])));
 */
export function keyValueSink(options: KeyValueSinkOptions): KeyValueSink {
  return new KeyValueSink(options);
}

/** Payload per backend call before the sink splits a batch. */
const CHUNK_BYTES = 16 << 20;

/** About how many bytes a write takes on the wire (strings by length; enough to keep calls bounded). */
function approxBytes(item: WriteItem): number {
  let n = 64 + item.key.key.length + item.key.bucket.length + item.key.type.length + item.id.length;
  if (item.k !== 'u') return n + item.json.length;
  for (const op of item.ops) {
    n += 24 + op.p.length;
    if (typeof op.v === 'string') n += op.v.length;
    else if (Array.isArray(op.v)) for (const m of op.v) n += 3 + m.length;
    else n += 20;
  }
  return n;
}

function isWrite(w: unknown): w is KvWrite {
  return typeof w === 'object' && w !== null && (w as { [WRITE]?: unknown })[WRITE] === true;
}

function isRetryableError(error: unknown): boolean {
  return !(error instanceof ConveyorError) || error.retryable;
}

function keyString(k: ObjectKey): string {
  return `${k.type}\u0000${k.bucket}\u0000${k.key}`;
}

/** Write ids: the message id; a second write by the same message to the same key gets `#2`, and so on. */
function identify(writes: readonly KvWrite[], id: string, ts: number, msg: number): Planned[] {
  const seen = new Map<string, number>();
  return writes.map((write) => {
    const k = keyString(write.key);
    const n = (seen.get(k) ?? 0) + 1;
    seen.set(k, n);
    return { msg, write, id: n === 1 ? id : `${id}#${n}`, ts };
  });
}

function toItem(p: Planned): WriteItem {
  const w = p.write;
  if (w.kind === 'update') return { k: 'u', key: w.key, id: p.id, ts: p.ts, ops: w.ops };
  return { k: 'p', key: w.key, id: p.id, ts: p.ts, json: w.json };
}

function resultError(result: string, key: ObjectKey): ConveyorError {
  const [, kind, ...rest] = result.split(':');
  return badInput(kind === 'wrong-type' ? 'wrong-type' : 'bad-value', `${key.type}/${key.bucket}/${key.key}: ${rest.join(':')}`, { key: key.key, bucket: key.bucket, bucketType: key.type });
}
