/**
 * A FIFO ring buffer over a power-of-two array that grows by doubling. Channels and topics keep
 * their memory queue here: `push`/`shift` are O(1) with no per-item allocation, unlike
 * `Array.prototype.shift`, which is O(n) once V8 leaves its fast path.
 */
export class Ring<T> {
  #buf: (T | undefined)[];
  #mask: number;
  #head = 0;
  #length = 0;

  constructor(initialCapacity = 16) {
    let cap = 16;
    while (cap < initialCapacity) cap *= 2;
    this.#buf = new Array<T | undefined>(cap);
    this.#mask = cap - 1;
  }

  get length(): number {
    return this.#length;
  }

  push(value: T): void {
    if (this.#length === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#length) & this.#mask] = value;
    this.#length++;
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.#length > 0 ? this.#buf[this.#head] : undefined;
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const at = this.#head;
    const value = this.#buf[at];
    this.#buf[at] = undefined;
    this.#head = (at + 1) & this.#mask;
    this.#length--;
    return value;
  }

  /** Up to `max` items from the front, in FIFO order, without removing them (the dashboard's peek). */
  front(max: number): T[] {
    const n = Math.min(max, this.#length);
    const out = new Array<T>(n);
    for (let i = 0; i < n; i++) out[i] = this.#buf[(this.#head + i) & this.#mask] as T;
    return out;
  }

  /** Removes every item, calling `each` on it in FIFO order (to release what it holds). */
  clear(each?: (value: T) => void): void {
    while (this.#length > 0) {
      const value = this.shift() as T;
      each?.(value);
    }
    this.#head = 0;
  }

  #grow(): void {
    const old = this.#buf;
    const next = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.#length; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#buf = next;
    this.#mask = next.length - 1;
    this.#head = 0;
  }
}
