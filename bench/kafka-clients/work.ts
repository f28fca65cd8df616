/**
 * The one piece of work every Kafka client candidate does, and the clocks that time it the same
 * way for each. Publish: `count` records of `body` with two headers, acks=all, `batch` records a
 * request with up to `window` requests in flight. Consume: a new consumer group reads them from
 * the beginning, checks each record's id header, and commits the next offset per partition every
 * `commitIntervalMs` and once at the end (manual commits: what Conveyor's adapter does, since an
 * offset may only move past acked records).
 *
 * The consume clock starts at the first record delivered and stops at the last, and counts the
 * records after the first: the group join, assignment and first fetch (seconds on the mock) are
 * outside it for every client alike, and so is the final commit and leaving the group.
 *
 * Each phase is also measured per second of this process' CPU (user + system, from
 * process.cpuUsage): the client's own cost per record. On a shared machine wall-clock rates swing
 * with the neighbours' load (3-5× between consecutive runs on 2026-12-03); CPU per record much less.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';

export interface KafkaWork {
  brokers: string[];
  topic: string;
  group: string;
  count: number;
  batch: number;
  window: number;
  body: Buffer;
  commitIntervalMs: number;
}

export interface ClientFigures {
  publishPerSecond: number;
  consumePerSecond: number;
  /** Records per second of this process' CPU time. */
  publishPerCpuSecond: number;
  consumePerCpuSecond: number;
}

/** CPU time of this process so far, in seconds. */
export function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

export interface KafkaCandidate {
  /** e.g. "kafkajs 2.2.4". */
  label: string;
  /** Why it cannot run here (not installed, cannot talk to this broker), or undefined. */
  unavailable(brokers: string[]): Promise<string | undefined>;
  run(work: KafkaWork): Promise<ClientFigures>;
}

/** Headers every record carries, as Conveyor's publish sets them. */
export const ID_HEADER = 'conveyor-id';
export const TYPE_HEADER = 'content-type';
export const TYPE_VALUE = 'application/cbor';

export function recordId(topic: string, i: number): string {
  return `${topic}-${i}`;
}

/**
 * Publishes `count` records in batches through `send`, at most `window` batches in flight, and
 * returns records per second (of wall clock and of CPU) from the first send to the last confirm.
 */
export async function publishPipelined(
  work: KafkaWork,
  send: (from: number, n: number) => Promise<unknown>,
): Promise<{ perSecond: number; perCpuSecond: number }> {
  const start = performance.now();
  const cpu = cpuSeconds();
  let next = 0;
  const lane = async () => {
    while (next < work.count) {
      const from = next;
      const n = Math.min(work.batch, work.count - from);
      next += n;
      await send(from, n);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, work.window) }, lane));
  return { perSecond: work.count / ((performance.now() - start) / 1000), perCpuSecond: work.count / (cpuSeconds() - cpu) };
}

/** Counts deliveries and times them from the first to the last (see the file's comment). */
export class ConsumeClock {
  readonly done: Promise<void>;
  #count: number;
  #got = 0;
  #first = 0;
  #last = 0;
  #cpuFirst = 0;
  #cpuLast = 0;
  #missing = 0;
  #resolve!: () => void;

  constructor(count: number) {
    this.#count = count;
    this.done = new Promise((r) => (this.#resolve = r));
  }

  /** One record delivered; `id` is its id header's value, if any. */
  seen(id: string | undefined): void {
    const now = performance.now();
    if (this.#got === 0) {
      this.#first = now;
      this.#cpuFirst = cpuSeconds();
    }
    if (!id) this.#missing++;
    if (++this.#got === this.#count) {
      this.#last = now;
      this.#cpuLast = cpuSeconds();
      this.#resolve();
    }
  }

  get got(): number {
    return this.#got;
  }

  /** Records per second after the first; throws if a record came without its id header. */
  perSecond(): number {
    if (this.#missing) throw new Error(`${this.#missing} of ${this.#got} records were delivered without their ${ID_HEADER} header`);
    return (this.#count - 1) / ((this.#last - this.#first) / 1000);
  }

  /** Records per second of this process' CPU, over the same span. */
  perCpuSecond(): number {
    return (this.#count - 1) / (this.#cpuLast - this.#cpuFirst);
  }
}

/**
 * Manual offset commits: remembers the latest record per partition and commits them every
 * `intervalMs` (serialised, so commits never overtake each other) and on `flush()`.
 */
export class IntervalCommitter<T> {
  #latest = new Map<string, T>();
  #commit: (entries: T[]) => Promise<void>;
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout;
  #error: unknown;

  constructor(intervalMs: number, commit: (entries: T[]) => Promise<void>) {
    this.#commit = commit;
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  mark(topic: string, partition: number, entry: T): void {
    this.#latest.set(`${topic}\0${partition}`, entry);
  }

  flush(): Promise<void> {
    this.#chain = this.#chain.then(async () => {
      if (this.#latest.size === 0) return;
      const entries = [...this.#latest.values()];
      this.#latest.clear();
      await this.#commit(entries).catch((err) => (this.#error ??= err));
    });
    return this.#chain;
  }

  /** Last commit, then stop; throws the first commit error seen. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
    if (this.#error) throw this.#error;
  }
}

/** What the first few lines of an error say, for a candidate's "not measured" note. */
export function reason(err: unknown): string {
  const e = err as { message?: string; code?: string; errors?: Array<{ message?: string; apiId?: string }> };
  const inner = e.errors?.[0];
  const detail = inner ? ` (${inner.apiId ?? ''}${inner.apiId ? ': ' : ''}${inner.message ?? ''})` : '';
  return `${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}${detail}`.split('\n')[0]!;
}

/**
 * The installed version of package `name` (a package name, or the path of a package folder),
 * from the first package.json upwards of its entry point that has a version (and, for a name,
 * that name): not every package exports ./package.json.
 */
export function packageVersion(name: string): string {
  const byPath = isAbsolute(name);
  let dir = dirname(createRequire(import.meta.url).resolve(name));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.version && (byPath || pkg.name === name)) return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) return '?';
    dir = up;
  }
}
