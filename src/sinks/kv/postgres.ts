/**
 * The PostgreSQL backend: one jsonb row per object (postgres.sql.ts), one `SELECT <table>_apply(…)`
 * statement per batch — atomic, so a batch is stored whole or not at all.
 */
import { ConveyorError } from '../../core/errors.ts';
import { loadOptional } from '../../core/optional.ts';
import { type KvBackend, type ObjectKey, type ReadResult, sortSets, type WriteItem, type WriteResult } from './backend.ts';
import { JTYPE_SQL, schemaSql } from './postgres.sql.ts';

interface Pool {
  query(sql: string, params?: unknown[]): Promise<{ rows: any[] }>;
  end(): Promise<void>;
  on(event: 'error', listener: () => void): unknown;
}

export interface PostgresBackendOptions {
  url: string;
  table: string;
  appliedIdsPerKey: number;
  poolSize: number;
}

export class PostgresKvBackend implements KvBackend {
  readonly name = 'postgres';
  readonly #o: PostgresBackendOptions;
  #pool: Pool | undefined;

  constructor(options: PostgresBackendOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    if (this.#pool) return;
    const pg = await loadOptional<typeof import('pg')>('pg', 'keyValueSink (postgres://)');
    const PoolCtor = (pg as unknown as { default?: typeof import('pg') }).default?.Pool ?? pg.Pool;
    const pool = new PoolCtor({ connectionString: this.#o.url, max: this.#o.poolSize, connectionTimeoutMillis: 5000 }) as unknown as Pool;
    // A dropped connection is replaced by the pool; the failing query reports it.
    pool.on('error', () => {});
    try {
      // Two sinks starting at once would race on CREATE OR REPLACE FUNCTION: serialize on a lock.
      await pool.query(`SELECT pg_advisory_lock(hashtext('conveyor-kv-schema')); ${JTYPE_SQL} ${schemaSql(this.#o.table)} SELECT pg_advisory_unlock(hashtext('conveyor-kv-schema'));`);
    } catch (cause) {
      await pool.end().catch(() => undefined);
      throw classify(cause, this.#o.table, true);
    }
    this.#pool = pool;
  }

  #p(): Pool {
    if (!this.#pool) throw new ConveyorError('ERR_CLOSED', 'keyValueSink (postgres): not started or closed');
    return this.#pool;
  }

  async apply(items: readonly WriteItem[]): Promise<WriteResult[]> {
    const wire = items.map((it) => {
      const at = { t: it.key.type, b: it.key.bucket, key: it.key.key, id: it.id };
      if (it.k === 'u') return { ...at, k: 'u', ops: it.ops };
      const v = JSON.parse(it.json) as unknown;
      return it.k === 'p' ? { ...at, k: 'p', ts: it.ts, v } : { ...at, k: 'c', ts: it.ts, v, ids: it.ids, ver: it.version };
    });
    try {
      const { rows } = await this.#p().query(`SELECT ${this.#o.table}_apply($1::jsonb, $2::int) AS r`, [JSON.stringify(wire), this.#o.appliedIdsPerKey]);
      return rows[0].r as string[];
    } catch (cause) {
      throw classify(cause, this.#o.table);
    }
  }

  async read(keys: readonly ObjectKey[], ids: readonly (readonly string[])[] = []): Promise<ReadResult[]> {
    let rows: Array<{ t: string; b: string; k: string; kind: 'map' | 'value' | null; doc: unknown; ts: string; last_id: string; version: string; applied: string[] }>;
    try {
      ({ rows } = await this.#p().query(
        `SELECT bucket_type AS t, bucket AS b, key AS k, kind, doc, ts, last_id, version, applied FROM ${this.#o.table}
         WHERE (bucket_type, bucket, key) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`,
        [keys.map((k) => k.type), keys.map((k) => k.bucket), keys.map((k) => k.key)],
      ));
    } catch (cause) {
      throw classify(cause, this.#o.table);
    }
    const byKey = new Map(rows.map((r) => [`${r.t}\0${r.b}\0${r.k}`, r]));
    return keys.map((k, i) => {
      const r = byKey.get(`${k.type}\0${k.bucket}\0${k.key}`);
      const applied = (ids[i] ?? []).map((id) => r?.applied.includes(id) ?? false);
      if (!r?.kind) return { stored: undefined, applied };
      const value = r.kind === 'map' ? sortSets(r.doc) : r.doc;
      return { stored: { kind: r.kind, value, timestamp: Number(r.ts), id: r.last_id, version: Number(r.version) }, applied };
    });
  }

  async probe(): Promise<boolean> {
    try {
      await this.#p().query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async remove(keys: readonly ObjectKey[]): Promise<void> {
    await this.#p().query(`DELETE FROM ${this.#o.table} WHERE (bucket_type, bucket, key) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`, [
      keys.map((k) => k.type),
      keys.map((k) => k.bucket),
      keys.map((k) => k.key),
    ]);
  }

  async dropAll(): Promise<void> {
    await this.#p().query(`DROP TABLE IF EXISTS ${this.#o.table}; DROP FUNCTION IF EXISTS ${this.#o.table}_apply(jsonb, int)`);
  }

  async close(): Promise<void> {
    const p = this.#pool;
    this.#pool = undefined;
    await p?.end();
  }
}

/**
 * SQLSTATE classes 22 (data), 23 (integrity) and 54 (limits) are the batch's fault: non-retryable, so the
 * runtime splits the batch until the write stands alone and dead-letters it. Everything else
 * (refused connection, 08xxx, 57P01, 40P01) is the store's: retryable, the batch stays in flight.
 * At start, a wrong password or a missing database (28xxx, 3D000) will not heal by waiting.
 */
function classify(cause: unknown, table: string, starting = false): ConveyorError {
  const code = (cause as { code?: unknown })?.code;
  const sqlstate = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  // 54xxx (program limit exceeded: a value or statement too large) is the batch's fault as well.
  const dataError = sqlstate !== undefined && (sqlstate.startsWith('22') || sqlstate.startsWith('23') || sqlstate.startsWith('54'));
  const permanent = starting && sqlstate !== undefined && (sqlstate.startsWith('28') || sqlstate === '3D000' || sqlstate.startsWith('42'));
  return new ConveyorError('ERR_SINK', `keyValueSink (postgres ${table}): ${(cause as Error)?.message ?? String(cause)}`, {
    cause,
    retryable: !dataError && !permanent,
    details: { ...(sqlstate ? { sqlstate } : {}), ...(dataError ? { kind: 'bad-value' } : {}) },
  });
}
