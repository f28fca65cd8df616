import { CompactMemoryBackend } from './compact-backend.ts';
import { Ring } from './ring.ts';
import type { BackendQueue, EngineMessage } from './types.ts';

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * An unbounded in-memory FIFO of message objects behind the same interface as the disk queue (the
 * default is CompactMemoryBackend, which packs them).
 * Past the high-water mark messages land here, so the engine's memory is bounded only when a
 * disk backend is configured; this one exists so that the engine needs no disk to run.
 */
export class MemoryBackend implements BackendQueue {
  #ring = new Ring<EngineMessage>();
  #closed = false;

  put(message: EngineMessage): void {
    if (this.#closed) return;
    this.#ring.push(message);
  }

  read(): EngineMessage | undefined {
    return this.#ring.shift();
  }

  get depth(): number {
    return this.#ring.length;
  }

  peek(max: number): EngineMessage[] {
    return this.#ring.front(max);
  }

  sync(): Promise<void> {
    return RESOLVED;
  }

  empty(): void {
    this.#ring.clear();
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#ring.clear();
    return RESOLVED;
  }

  delete(): Promise<void> {
    return this.close();
  }
}

/**
 * nsqd's dummy backend, for `#ephemeral` topics and channels: what overflows the memory queue is
 * dropped, and (unlike nsqd) counted in `dropped`, which channel stats report as dropped_count.
 */
export class DiscardBackend implements BackendQueue {
  dropped = 0;

  put(_message: EngineMessage): void {
    this.dropped++;
  }

  read(): EngineMessage | undefined {
    return undefined;
  }

  get depth(): number {
    return 0;
  }

  sync(): Promise<void> {
    return RESOLVED;
  }

  empty(): void {}

  close(): Promise<void> {
    return RESOLVED;
  }

  delete(): Promise<void> {
    return RESOLVED;
  }
}

/** The engine's default backend: packed slabs, not objects (see compact-backend.ts). */
export function memoryBackendFactory(): BackendQueue {
  return new CompactMemoryBackend();
}
