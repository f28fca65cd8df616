/**
 * What a key-value backend does for the sink: apply a batch of writes in one round trip and say,
 * per write, how it went; read objects back. The sink owns batching, idempotence bookkeeping on
 * its side (write ids), conflict resolution and error classification; a backend owns the wire.
 */
import type { PathOp } from './ops.ts';

/** An object's address: Riak's bucket type → bucket → key. */
export interface ObjectKey {
  readonly type: string;
  readonly bucket: string;
  readonly key: string;
}

/**
 * One write. `id` is the write's idempotence id (the message id, suffixed when one message
 * writes one key more than once); a backend applies each id at most once per object, as long as
 * the id is among the object's last `appliedIdsPerKey` applied ids.
 */
export type WriteItem =
  /** Datatype operations on a map. */
  | { readonly k: 'u'; readonly key: ObjectKey; readonly id: string; readonly ts: number; readonly ops: readonly PathOp[] }
  /** A plain value, last write wins by (timestamp, id), decided in the store. */
  | { readonly k: 'p'; readonly key: ObjectKey; readonly id: string; readonly ts: number; readonly json: string }
  /** A plain value merged by a resolver in the sink: stored only if the object is still at `version`. */
  | { readonly k: 'c'; readonly key: ObjectKey; readonly id: string; readonly ts: number; readonly json: string; readonly ids: readonly string[]; readonly version: number };

/**
 * Per write: 'ok'; 'dup' (id already applied: nothing done); 'stale' (an older plain value lost
 * to a newer one: nothing stored, id remembered); 'conflict' (a versioned write found the object
 * changed); or `err:<kind>:<reason>` (the write does not fit what is stored: nothing done).
 */
export type WriteResult = string;

/** An object as stored, for reads and for resolving conflicts. */
export interface StoredObject {
  readonly kind: 'map' | 'value';
  /** A map as plain JSON (sets as sorted arrays), or the plain value. */
  readonly value: unknown;
  /** Message timestamp (ms) and id of the write that set a plain value. */
  readonly timestamp: number;
  readonly id: string;
  /** Bumped by every write that changed the object. 0 when absent. */
  readonly version: number;
}

export interface ReadResult {
  readonly stored: StoredObject | undefined;
  /** Aligned with the ids asked about: which were already applied to this object. */
  readonly applied: readonly boolean[];
}

export interface KvBackend {
  readonly name: string;
  /** Connects (and installs what the backend needs: a script, a table and function). */
  start(): Promise<void>;
  /** Applies the writes in order, in one round trip; results aligned with `items`. */
  apply(items: readonly WriteItem[]): Promise<WriteResult[]>;
  /** Reads objects (and asks which ids each already applied), in one round trip where it can. */
  read(keys: readonly ObjectKey[], ids?: readonly (readonly string[])[]): Promise<ReadResult[]>;
  /** A cheap "is the store back?" while it is down. */
  probe(): Promise<boolean>;
  /** Deletes objects (tests, cleanup). */
  remove(keys: readonly ObjectKey[]): Promise<void>;
  /** Deletes everything under this backend's prefix or table (tests, teardown). */
  dropAll(): Promise<void>;
  close(): Promise<void>;
}

/** Sets come back in the store's own order; make them one order on every backend. */
export function sortSets(value: unknown): unknown {
  if (Array.isArray(value)) return [...value].sort();
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = sortSets(v);
    return out;
  }
  return value;
}
