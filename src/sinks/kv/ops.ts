/**
 * Riak's datatypes as operations: a map of registers, counters, sets, flags and nested maps.
 * Builders return plain data; {@link flatten} checks what can be checked without the store
 * (names, value types, sizes) and turns nested map operations into one list of path operations,
 * the form both backends apply.
 *
 * One difference from Riak, on purpose: a field is named by its name alone, not by (name, type).
 * `counter('views')` and `register('views')` are the same field, and using one name as two types
 * is an error (`kind: 'wrong-type'`) instead of two fields that look alike — the stored map reads
 * back as plain JSON (`{ views: 3, tags: ['a'] }`), where two types under one name cannot exist.
 */
import { ConveyorError } from '../../core/errors.ts';

export type FieldType = 'register' | 'counter' | 'set' | 'flag' | 'map';

/** One datatype operation on a field of a map (possibly nested). */
export type MapOp =
  | { readonly type: 'register'; readonly path: readonly string[]; readonly op: 'assign'; readonly value: string }
  | { readonly type: 'counter'; readonly path: readonly string[]; readonly op: 'increment'; readonly value: number }
  | { readonly type: 'set'; readonly path: readonly string[]; readonly op: 'add' | 'remove'; readonly value: readonly string[] }
  | { readonly type: 'flag'; readonly path: readonly string[]; readonly op: 'enable' | 'disable' }
  | { readonly type: 'map'; readonly path: readonly string[]; readonly op: 'update'; readonly ops: readonly MapOp[] };

/** A register holds one string (Riak registers hold binaries); assign replaces it. */
export function register(name: string) {
  return { assign: (value: string): MapOp => ({ type: 'register', path: [name], op: 'assign', value }) };
}

/** A counter holds an integer; increment by a (possibly negative) safe integer. */
export function counter(name: string) {
  return {
    increment: (by = 1): MapOp => ({ type: 'counter', path: [name], op: 'increment', value: by }),
    decrement: (by = 1): MapOp => ({ type: 'counter', path: [name], op: 'increment', value: -by }),
  };
}

/** A set of strings. */
export function set(name: string) {
  return {
    add: (...members: string[]): MapOp => ({ type: 'set', path: [name], op: 'add', value: members }),
    remove: (...members: string[]): MapOp => ({ type: 'set', path: [name], op: 'remove', value: members }),
  };
}

/** A flag is a boolean, false until enabled. */
export function flag(name: string) {
  return {
    enable: (): MapOp => ({ type: 'flag', path: [name], op: 'enable' }),
    disable: (): MapOp => ({ type: 'flag', path: [name], op: 'disable' }),
  };
}

/** A nested map: its operations apply inside it. */
export function map(name: string) {
  return { update: (ops: readonly MapOp[]): MapOp => ({ type: 'map', path: [name], op: 'update', ops }) };
}

/** A flattened operation: the field's path joined by '.', as both backends store it. */
export interface PathOp {
  /** Path segments joined by '.' (names cannot contain '.'). */
  p: string;
  t: Exclude<FieldType, 'map'>;
  /** assign | increment | add | remove | enable | disable */
  a: string;
  v?: string | number | string[];
}

export const LIMITS = {
  /** Longest field name, key, bucket or bucket-type name, in characters. */
  name: 512,
  /** Deepest map nesting. */
  depth: 16,
  /** Largest register, set member or put value, in UTF-16 code units (about bytes for ASCII). */
  value: 1 << 20,
} as const;

/** A value the store cannot hold, or an operation that does not fit: that message's own fault. */
export function badInput(kind: 'bad-value' | 'wrong-type', message: string, details: Record<string, unknown> = {}): ConveyorError {
  return new ConveyorError('ERR_SINK', `keyValueSink: ${message}`, { retryable: false, details: { kind, ...details } });
}

// PostgreSQL's jsonb cannot hold U+0000; Redis could, but both backends take the same input.
const NUL = '\u0000';

export function checkString(what: string, s: unknown): string {
  if (typeof s !== 'string') throw badInput('bad-value', `${what} must be a string, got ${typeof s}`);
  if (s.length > LIMITS.value) throw badInput('bad-value', `${what} is longer than ${LIMITS.value} characters`);
  if (s.includes(NUL)) throw badInput('bad-value', `${what} contains U+0000, which the store cannot hold`);
  return s;
}

export function checkName(what: string, s: unknown): string {
  if (typeof s !== 'string' || s.length === 0) throw badInput('bad-value', `${what} must be a non-empty string`);
  if (s.length > LIMITS.name) throw badInput('bad-value', `${what} is longer than ${LIMITS.name} characters`);
  if (s.includes(NUL)) throw badInput('bad-value', `${what} contains U+0000`);
  return s;
}

/** Checks every operation and flattens nested maps into path operations. */
export function flatten(ops: readonly MapOp[], prefix: readonly string[] = [], out: PathOp[] = []): PathOp[] {
  if (!Array.isArray(ops)) throw badInput('bad-value', 'update: ops must be an array');
  for (const op of ops) {
    if (!op || typeof op !== 'object' || !Array.isArray(op.path) || op.path.length !== 1) throw badInput('bad-value', 'update: not a datatype operation (use register/counter/set/flag/map)');
    const name = checkName('field name', op.path[0]);
    if (name.includes('.')) throw badInput('bad-value', `field name ${JSON.stringify(name)} contains '.'`);
    const path = [...prefix, name];
    const p = path.join('.');
    if (path.length > LIMITS.depth) throw badInput('bad-value', `map nesting deeper than ${LIMITS.depth} at ${p}`);
    switch (op.type) {
      case 'register':
        out.push({ p, t: 'register', a: 'assign', v: checkString(`register ${p}`, op.value) });
        break;
      case 'counter':
        if (!Number.isSafeInteger(op.value)) throw badInput('bad-value', `counter ${p}: increment must be a safe integer, got ${op.value}`, { path: p });
        out.push({ p, t: 'counter', a: 'increment', v: op.value });
        break;
      case 'set':
        if (op.op !== 'add' && op.op !== 'remove') throw badInput('bad-value', `set ${p}: unknown operation ${String(op.op)}`);
        if (!Array.isArray(op.value)) throw badInput('bad-value', `set ${p}: members must be strings`);
        out.push({ p, t: 'set', a: op.op, v: (op.value as unknown[]).map((m) => checkString(`member of set ${p}`, m)) });
        break;
      case 'flag':
        if (op.op !== 'enable' && op.op !== 'disable') throw badInput('bad-value', `flag ${p}: unknown operation ${String(op.op)}`);
        out.push({ p, t: 'flag', a: op.op });
        break;
      case 'map':
        flatten(op.ops, path, out);
        break;
      default:
        throw badInput('bad-value', `unknown datatype ${String((op as { type?: unknown }).type)}`);
    }
  }
  return out;
}

/**
 * A put value must survive JSON both ways unchanged: null, booleans, finite numbers, strings,
 * arrays and plain objects. NaN would silently become null, a Date a string, undefined vanish.
 */
export function checkJson(value: unknown, where = 'value', depth = 0): void {
  if (depth > 64) throw badInput('bad-value', `put: ${where} is nested deeper than 64`);
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw badInput('bad-value', `put: ${where} is ${value}, which JSON cannot hold`);
    return;
  }
  if (typeof value === 'string') {
    checkString(`put: ${where}`, value);
    return;
  }
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) checkJson(v, `${where}[${i}]`, depth + 1);
    return;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) {
      checkString(`put: key of ${where}`, k);
      if (v === undefined) throw badInput('bad-value', `put: ${where}.${k} is undefined`);
      checkJson(v, `${where}.${k}`, depth + 1);
    }
    return;
  }
  throw badInput('bad-value', `put: ${where} is a ${typeof value === 'object' ? (value as object).constructor?.name ?? 'object' : typeof value}, not JSON`);
}
