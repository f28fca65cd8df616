import { Msg } from './message.ts';
import { Ring } from './ring.ts';
import type { BackendQueue, EngineMessage, PeekResult } from './types.ts';

/**
 * A topic's or channel's queue: memory up to `limit` (the high-water mark), then the backend.
 *
 * Order is FIFO, unlike nsqd (whose consumers select at random between the memory channel and
 * the backend): once anything is in the backend, new messages go there too until it is drained,
 * and reads take memory first, then the backend. So a spill costs backend traffic until the
 * backlog is gone, and in exchange one consumer always sees publish order.
 */
export class MessageQueue {
  readonly backend: BackendQueue;
  #ring = new Ring<Msg>();
  #limit: number;

  constructor(limit: number, backend: BackendQueue) {
    this.#limit = limit;
    this.backend = backend;
  }

  get depth(): number {
    return this.#ring.length + this.backend.depth;
  }

  /**
   * How many more messages put() would keep in memory (0 once anything waits in the backend);
   * with no memory part (limit 0) everything goes to the backend anyway, so there is no limit.
   */
  get room(): number {
    if (this.#limit === 0) return Number.POSITIVE_INFINITY;
    return this.backend.depth === 0 ? Math.max(0, this.#limit - this.#ring.length) : 0;
  }

  get memoryDepth(): number {
    return this.#ring.length;
  }

  put(msg: Msg): void {
    if (this.#ring.length < this.#limit && this.backend.depth === 0) {
      this.#ring.push(msg);
      return;
    }
    // The backend gets a fresh copy of the message; the position the old one came from is done.
    const source = msg.source;
    if (source !== undefined) {
      msg.source = undefined;
      this.backend.release?.(source);
    }
    this.backend.put(msg);
  }

  shift(): Msg | undefined {
    const msg = this.#ring.shift();
    if (msg !== undefined) return msg;
    if (this.backend.depth === 0) return undefined;
    const read = this.backend.read();
    return read === undefined ? undefined : Msg.fromBackend(read);
  }

  /** The next `max` messages in the order shift() would return them, none removed. */
  peek(max: number): PeekResult {
    const messages: EngineMessage[] = this.#ring.front(max);
    const backendDepth = this.backend.depth;
    if (messages.length < max && backendDepth > 0) {
      const more = this.backend.peek?.(max - messages.length);
      if (more === undefined) return { messages, partial: true };
      for (const m of more) messages.push(m);
    }
    return { messages, partial: this.depth > messages.length };
  }

  /** Drops every queued message (memory and backend), releasing what came from the backend. */
  empty(): void {
    this.#ring.clear((msg) => releaseSource(this.backend, msg));
    this.backend.empty();
  }

  /**
   * Moves what is in memory into the backend, so that a durable backend keeps it over a restart.
   * Those messages then come after what the backend already held (nsqd's flush reorders the same way).
   */
  flushToBackend(): void {
    const pending: Msg[] = [];
    this.#ring.clear((msg) => pending.push(msg));
    for (const msg of pending) {
      releaseSource(this.backend, msg);
      this.backend.put(msg);
    }
  }
}

export function releaseSource(backend: BackendQueue, msg: Msg): void {
  const source = msg.source;
  if (source !== undefined) {
    msg.source = undefined;
    backend.release?.(source);
  }
}
