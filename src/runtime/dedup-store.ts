/**
 * Where the dedup middleware remembers processed message ids (the nsqworker pattern). The
 * default keeps a bounded, expiring set in memory; a shared store (Redis SET NX EX, a database
 * table) makes dedup span processes.
 */
export interface DedupStore {
  /** Whether `id` was recorded as processed (and has not expired). */
  has(id: string): boolean | Promise<boolean>;
  /** Record `id` as processed. */
  add(id: string): void | Promise<void>;
}

export interface MemoryDedupOptions {
  /** Most ids remembered; the oldest go first. @default 100000 */
  maxEntries?: number;
  /** How long an id is remembered, ms. @default 3600000 (1 h) */
  ttlMs?: number;
}

/** A bounded LRU of ids with a TTL: a Map keeps insertion order, so the oldest is first. */
export class MemoryDedupStore implements DedupStore {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  readonly #ttl: number;

  constructor(options: MemoryDedupOptions = {}) {
    this.#max = options.maxEntries ?? 100_000;
    this.#ttl = options.ttlMs ?? 3_600_000;
  }

  has(id: string): boolean {
    const at = this.#seen.get(id);
    if (at === undefined) return false;
    if (Date.now() - at > this.#ttl) {
      this.#seen.delete(id);
      return false;
    }
    return true;
  }

  add(id: string): void {
    this.#seen.delete(id);
    this.#seen.set(id, Date.now());
    if (this.#seen.size > this.#max) this.#seen.delete(this.#seen.keys().next().value!);
  }

  get size(): number {
    return this.#seen.size;
  }
}
