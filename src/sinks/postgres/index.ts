/**
 * A batch sink into PostgreSQL: `app.consumeBatch(Msg, opts, sink.handler)`. One statement per
 * batch — `INSERT … SELECT * FROM unnest($1::text[], $2::…[]) ON CONFLICT (id) DO NOTHING` —
 * which is atomic, idempotent on the message id (a redelivered message makes no second row), and
 * resolves only after PostgreSQL committed it, so the runtime acks only what is stored.
 *
 * Errors are classified once, here: connection trouble is a retryable ERR_SINK (an outage: the
 * runtime keeps the batch in flight and retries without limit); data errors (SQLSTATE classes 22
 * and 23) are non-retryable, so the runtime splits the batch until the bad row stands alone and
 * dead-letters it.
 *
 * While the database is unreachable the handler's `probe` runs `SELECT 1` every
 * `probeIntervalMs` (one at a time per sink), so the runtime retries the held batch as soon as
 * the database answers instead of sleeping out a backoff that has grown to seconds.
 *
 * With no `url`, it runs on embedded PostgreSQL (`@electric-sql/pglite`) in a data directory, so
 * the default needs no server.
 */
import { mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { ConveyorError } from '../../core/errors.ts';
import { loadOptional } from '../../core/optional.ts';
import type { BatchContext, BatchHandler, BatchMessage } from '../../runtime/batch-consumer.ts';

export interface Column<T> {
  /** PostgreSQL type of the column and of the array unnest reads, e.g. 'text', 'int8', 'jsonb', 'timestamptz'. */
  type: string;
  /** The cell for one message. */
  value: (value: T, message: BatchMessage) => unknown;
}

export interface PostgresSinkOptions<T> {
  /** postgres:// URL. Omit for embedded PostgreSQL (PGlite). */
  url?: string;
  /** PGlite data directory when no `url` is given; `memory://` keeps it in memory. @default './.conveyor/pgdata' */
  dataDir?: string;
  table: string;
  columns: Record<string, Column<T>>;
  /** The column holding the message id (primary key). @default 'id' */
  idColumn?: string;
  /** How long `start()` waits for the database, ms. @default 30000 */
  connectTimeoutMs?: number;
  /** Connections in the pool (real PostgreSQL). @default 2 */
  poolSize?: number;
  /**
   * While the database is unreachable, how often it is probed (`SELECT 1`), ms; also the retry
   * interval of `start()`. The first commit after an outage comes at most about this long after
   * the database is back. @default 250
   */
  probeIntervalMs?: number;
}

interface Db {
  query(sql: string, params?: unknown[]): Promise<{ rows: any[] }>;
  close(): Promise<void>;
}

const IDENT = /^[a-zA-Z_][a-zA-Z0-9_]*(\.[a-zA-Z_][a-zA-Z0-9_]*)?$/;

export class PostgresSink<T> {
  readonly #o: Required<Omit<PostgresSinkOptions<T>, 'url' | 'dataDir'>> & Pick<PostgresSinkOptions<T>, 'url' | 'dataDir'>;
  readonly #names: string[];
  readonly #sql: string;
  #db: Db | undefined;
  #probing: Promise<boolean> | undefined;

  constructor(options: PostgresSinkOptions<T>) {
    const problems: string[] = [];
    if (!IDENT.test(options.table ?? '')) problems.push(`table: must be a plain SQL identifier, got ${JSON.stringify(options.table)}`);
    const idColumn = options.idColumn ?? 'id';
    for (const [name, col] of Object.entries(options.columns ?? {})) {
      if (!IDENT.test(name)) problems.push(`columns.${name}: not a plain SQL identifier`);
      if (!/^[a-z0-9_ ]+(\[\])?$/i.test(col?.type ?? '')) problems.push(`columns.${name}.type: not a type name`);
      if (typeof col?.value !== 'function') problems.push(`columns.${name}.value: must be a function`);
    }
    if (options.probeIntervalMs !== undefined && !(Number.isFinite(options.probeIntervalMs) && options.probeIntervalMs >= 10)) {
      problems.push(`probeIntervalMs: must be a number ≥ 10, got ${JSON.stringify(options.probeIntervalMs)}`);
    }
    if (idColumn in (options.columns ?? {})) problems.push(`columns.${idColumn}: the id column is filled from the message id`);
    if (problems.length) throw new ConveyorError('ERR_BAD_OPTIONS', `postgresSink: ${problems.join('; ')}`, { details: { problems } });
    this.#o = { idColumn, connectTimeoutMs: 30_000, poolSize: 2, probeIntervalMs: 250, ...options };
    this.#names = Object.keys(options.columns);
    const all = [idColumn, ...this.#names];
    const types = ['text', ...this.#names.map((n) => options.columns[n]!.type)];
    this.#sql =
      `INSERT INTO ${options.table} (${all.join(', ')}) ` +
      `SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}) ` +
      `ON CONFLICT (${idColumn}) DO NOTHING`;
    this.handler = Object.assign((values: T[], ctx: BatchContext): Promise<void> => this.#write(values, ctx), {
      probe: { intervalMs: this.#o.probeIntervalMs, ready: () => this.#probe() },
    });
  }

  /** The batch handler for `app.consumeBatch`: resolves after commit. Carries the outage probe. */
  readonly handler: BatchHandler<T>;

  /**
   * Is the database back? `SELECT 1` through the pool (a fresh connection, which the retried
   * INSERT then reuses), bounded by the pool's 5 s connect timeout; concurrent batches share one
   * probe in flight. Before the first connect, true: the handler's start() does the waiting.
   */
  #probe(): Promise<boolean> {
    const db = this.#db;
    if (!db) return Promise.resolve(true);
    this.#probing ??= db.query('SELECT 1').then(
      () => true,
      () => false,
    ).finally(() => {
      this.#probing = undefined;
    });
    return this.#probing;
  }

  async #write(values: T[], ctx: BatchContext): Promise<void> {
    const db = this.#db ?? (await this.start());
    const params: unknown[][] = [ctx.messages.map((m) => m.id), ...this.#names.map(() => [] as unknown[])];
    for (let i = 0; i < values.length; i++) {
      const message = ctx.messages[i]!;
      for (let c = 0; c < this.#names.length; c++) params[c + 1]!.push(this.#o.columns[this.#names[c]!]!.value(values[i]!, message));
    }
    try {
      await db.query(this.#sql, params);
    } catch (cause) {
      throw classify(cause, this.#o.table);
    }
  };

  /** Connects, waiting for the database (retrying with backoff) up to connectTimeoutMs. */
  async start(): Promise<Db> {
    if (this.#db) return this.#db;
    const deadline = Date.now() + this.#o.connectTimeoutMs;
    let delay = Math.min(100, this.#o.probeIntervalMs);
    for (;;) {
      let db: Db | undefined;
      try {
        db = await this.#connect();
        await db.query('SELECT 1');
        this.#db = db;
        return db;
      } catch (cause) {
        // A pool that never answered is closed, not left behind with its timers and sockets.
        await db?.close().catch(() => undefined);
        // A missing client, a wrong role or password, or a database that does not exist will not
        // appear by waiting: say so at once instead of after connectTimeoutMs.
        const permanent = permanentConnectError(cause, this.#o.url);
        if (permanent) throw permanent;
        if (Date.now() + delay > deadline) {
          throw new ConveyorError('ERR_SINK', `postgresSink: database not reachable within ${this.#o.connectTimeoutMs} ms: ${(cause as Error).message}`, { cause });
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(this.#o.probeIntervalMs, delay * 2);
      }
    }
  }

  async #connect(): Promise<Db> {
    if (this.#o.url) {
      const pg = await loadOptional<typeof import('pg')>('pg', 'postgresSink');
      const Pool = (pg as unknown as { default?: typeof import('pg') }).default?.Pool ?? pg.Pool;
      const pool = new Pool({ connectionString: this.#o.url, max: this.#o.poolSize, connectionTimeoutMillis: 5000, ...defaultUser(this.#o.url) });
      // A dropped connection is replaced by the pool; the failing query reports it.
      pool.on('error', () => {});
      return { query: (sql, params) => pool.query(sql, params), close: () => pool.end() };
    }
    const { PGlite } = await loadOptional<typeof import('@electric-sql/pglite')>('@electric-sql/pglite', 'postgresSink (embedded)');
    const dir = this.#o.dataDir ?? './.conveyor/pgdata';
    // PGlite waits forever on a directory whose parent does not exist: make the path first.
    const path = dir.includes('://') ? dir : resolve(dir);
    if (path === resolve(dir)) mkdirSync(path, { recursive: true });
    const db = new PGlite(path);
    await db.waitReady;
    return { query: (sql, params) => db.query(sql, params), close: () => db.close() };
  }

  /** Runs DDL (e.g. CREATE TABLE IF NOT EXISTS) on the sink's database. */
  async exec(sql: string): Promise<void> {
    const db = await this.start();
    await db.query(sql);
  }

  /** Runs a query on the sink's database (for checks and the reference pipeline's status line). */
  async query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]> {
    const db = await this.start();
    return (await db.query(sql, params)).rows as R[];
  }

  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    await db?.close();
  }
}


/**
 * libpq's rule for a URL without a user name: $PGUSER, else the operating-system user. node-postgres
 * only reads $USER, which is unset in many containers and services, and then sends no user at all.
 */
function defaultUser(url: string): { user?: string } {
  let named: string;
  try {
    named = new URL(url).username;
  } catch {
    return {}; // not a URL (a key=value string): node-postgres parses it
  }
  if (named) return {};
  const user = process.env.PGUSER || safeOsUser();
  return user ? { user } : {};
}

function safeOsUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

/** SQLSTATE class 28 (authorization) and 3D000 (no such database): waiting will not help. */
function permanentConnectError(cause: unknown, url: string | undefined): ConveyorError | undefined {
  if (cause instanceof ConveyorError && !cause.retryable) return cause;
  const code = (cause as { code?: unknown })?.code;
  if (typeof code !== 'string' || !(code.startsWith('28') || code === '3D000')) return undefined;
  let who = '';
  if (url) {
    try {
      if (!new URL(url).username) who = ` (the URL names no user; used ${process.env.PGUSER ? `$PGUSER="${process.env.PGUSER}"` : `the OS user "${safeOsUser() ?? '?'}"`}, as libpq does)`;
    } catch {}
  }
  return new ConveyorError('ERR_SINK', `postgresSink: PostgreSQL refused the connection: ${(cause as Error).message}${who}`, {
    cause,
    retryable: false,
    details: { sqlstate: code },
  });
}
/**
 * @example
 * const sink = postgresSink({ url: 'postgres://127.0.0.1/test', table: 'frames',
 *   columns: { camera: { type: 'text', value: (f) => f.camera }, score: { type: 'float8', value: (f) => f.score } } });
 * await pipeline.consumeBatch(Frame, { channel: 'archive', batch: { maxSize: 1000, maxWaitMs: 500 } }, sink.handler);
 */
export function postgresSink<T>(options: PostgresSinkOptions<T>): PostgresSink<T> {
  return new PostgresSink(options);
}

/** Data errors are the rows' fault (no retry helps); everything else is the database's (an outage). */
function classify(cause: unknown, table: string): ConveyorError {
  const code = (cause as { code?: unknown })?.code;
  const sqlstate = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  const dataError = sqlstate !== undefined && (sqlstate.startsWith('22') || sqlstate.startsWith('23'));
  return new ConveyorError('ERR_SINK', `postgresSink(${table}): ${(cause as Error)?.message ?? String(cause)}`, {
    cause,
    retryable: !dataError,
    details: sqlstate ? { sqlstate } : undefined,
  });
}
