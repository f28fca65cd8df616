import type { Msg } from './message.ts';

/**
 * A binary min-heap of messages by `deferUntil` (ms since the epoch): a channel's deferred
 * messages (REQ with a delay, DPUB), as nsqd's deferred pqueue. The scan pops what is due.
 */
export class DeferredHeap {
  #items: Msg[] = [];

  get size(): number {
    return this.#items.length;
  }

  push(msg: Msg): void {
    msg.ownBody();
    const items = this.#items;
    items.push(msg);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.deferUntil <= msg.deferUntil) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = msg;
  }

  /** The earliest message if it is due at `now`, removed from the heap; else undefined. */
  popDue(now: number): Msg | undefined {
    const items = this.#items;
    const top = items[0];
    if (top === undefined || top.deferUntil > now) return undefined;
    const last = items.pop()!;
    if (items.length > 0) {
      // Sift `last` down from the root.
      let i = 0;
      const n = items.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const child = r < n && items[r]!.deferUntil < items[l]!.deferUntil ? r : l;
        if (items[child]!.deferUntil >= last.deferUntil) break;
        items[i] = items[child]!;
        i = child;
      }
      items[i] = last;
    }
    return top;
  }

  /** Removes everything, calling `each` on every message (order unspecified). */
  clear(each?: (msg: Msg) => void): void {
    const items = this.#items;
    this.#items = [];
    if (each) for (const m of items) each(m);
  }
}
