/** Shared by the engine suites: an engine closed when the test ends, a collecting consumer, a recording backend. */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { Channel } from '../../src/engine/channel.ts';
import { Engine, type EngineOptions } from '../../src/engine/index.ts';
import type { BackendQueue, ChannelConsumer, ConsumerOptions, EngineMessage } from '../../src/engine/types.ts';

export function makeEngine(t: TestContext, options: EngineOptions = {}): Engine {
  const engine = new Engine({ scanIntervalMs: 5, ...options });
  t.after(() => engine.close());
  return engine;
}

export interface Collector {
  consumer: ChannelConsumer;
  got: EngineMessage[];
  /** Most messages this consumer ever held in flight at once. */
  maxInFlight: number;
  detached: boolean;
}

/** A consumer that records what it gets; `autoFinish` FINs inside deliver (the fast path). */
export function collect(channel: Channel, ready: number, options: ConsumerOptions & { autoFinish?: boolean } = {}): Collector {
  const { autoFinish, ...consumerOptions } = options;
  const c: Collector = { consumer: undefined as unknown as ChannelConsumer, got: [], maxInFlight: 0, detached: false };
  c.consumer = channel.subscribe(
    {
      deliver(m) {
        c.got.push(m);
        c.maxInFlight = Math.max(c.maxInFlight, c.consumer.inFlight);
        if (autoFinish) c.consumer.finish(m.id);
      },
      detached() {
        c.detached = true;
      },
    },
    consumerOptions,
  );
  c.consumer.setReady(ready);
  return c;
}

export function bodies(...values: number[]): { body: Uint8Array }[] {
  return values.map((v) => ({ body: Uint8Array.of(v) }));
}

export function firstBytes(messages: EngineMessage[]): number[] {
  return messages.map((m) => m.body[0]!);
}

/** Lets scheduled drains and pumps (setImmediate) run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A backend shaped like a disk queue: it stores copies and `read()` returns new plain objects (not
 * the engine's), and it records every release, sync, close and delete.
 */
export class RecordingBackend implements BackendQueue {
  stored: EngineMessage[] = [];
  handedOut = new Set<EngineMessage>();
  released: EngineMessage[] = [];
  syncs = 0;
  closed = false;
  deleted = false;

  constructor(readonly name: string) {}

  put(m: EngineMessage): void {
    this.stored.push({ ...m });
  }
  read(): EngineMessage | undefined {
    const m = this.stored.shift();
    if (m === undefined) return undefined;
    const copy = { ...m };
    this.handedOut.add(copy);
    return copy;
  }
  get depth(): number {
    return this.stored.length;
  }
  async sync(): Promise<void> {
    this.syncs++;
  }
  empty(): void {
    this.stored = [];
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  async delete(): Promise<void> {
    this.deleted = true;
  }
  release(m: EngineMessage): void {
    assert.ok(this.handedOut.has(m), `${this.name}: release of an object read() did not return`);
    this.handedOut.delete(m);
    this.released.push(m);
  }
}

export function recordingFactory() {
  const made = new Map<string, RecordingBackend>();
  const factory = (topic: string, channel: string | undefined) => {
    const name = channel === undefined ? topic : `${topic}/${channel}`;
    const b = new RecordingBackend(name);
    made.set(name, b);
    return b;
  };
  return { made, factory };
}

