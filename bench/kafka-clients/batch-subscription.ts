/**
 * PROTOTYPE, bench only (src/transports/kafka is another engineer's): kafka://'s consume loop on
 * kafkajs' `eachBatch` instead of `eachMessage`, which kafka-clients measured at ≈ 2.4× the records
 * per CPU-second. Same contract as src/transports/kafka/subscription.ts — each record handed out
 * as its own delivery, tracked in Conveyor's per-partition watermark (watermark.ts), offsets
 * committed only past contiguous acks on a timer, the loop waiting (heartbeating) while
 * maxInFlight records are unacked or the subscription is paused — minus nack/retry topics and
 * close, which a real adapter keeps as they are.
 *
 * What eachBatch changes, and why each line is there:
 * - `eachBatchAutoResolve: false`, and `resolveOffset` of the last record handed out when the
 *   batch is left (and before each wait for room): with auto-resolve, leaving a batch early
 *   (rebalance, stop) would move kafkajs' fetch position past records never delivered, and they
 *   would be skipped until a restart. Resolving per record cost measurably more.
 * - `isRunning()`/`isStale()` checked before each record: after a rebalance the rest of a fetched
 *   batch belongs to whoever owns the partition now.
 * - Heartbeats while waiting for room, as today (a slow handler keeps the membership).
 */
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import { type PartitionWatermark, WatermarkTracker } from '../../src/transports/kafka/watermark.ts';

/** The delivery fields the benchmark reads; a real adapter keeps KafkaDelivery as it is. */
export interface BatchDelivery {
  readonly id: string;
  readonly body: Uint8Array;
  readonly headers: Record<string, string>;
  ack(): void;
}

const ID = 'conveyor-id';
const ATTEMPTS = 'conveyor-attempts';

export class BatchSubscription {
  #consumer: Consumer;
  #tracker = new WatermarkTracker();
  #max: number;
  #inFlight = 0;
  #paused = false;
  #room: (() => void) | undefined;
  #timer: NodeJS.Timeout;
  #committing: Promise<void> = Promise.resolve();
  #onMessage: (d: BatchDelivery) => void;
  #onError: (err: unknown) => void;

  constructor(consumer: Consumer, maxInFlight: number, commitIntervalMs: number, onMessage: (d: BatchDelivery) => void, onError: (err: unknown) => void) {
    this.#consumer = consumer;
    this.#max = maxInFlight;
    this.#onMessage = onMessage;
    this.#onError = onError;
    this.#timer = setInterval(() => void this.commit(), commitIntervalMs);
    this.#timer.unref();
    consumer.on(consumer.events.REBALANCING, () => void this.commit());
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const { topic, partition } of this.#tracker.partitions()) this.#tracker.revoke(topic, partition);
      this.#inFlight = 0;
      this.#room?.();
    });
  }

  /** For `consumer.run({ eachBatchAutoResolve: false, autoCommit: false, eachBatch })`. */
  readonly eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    const { topic, partition } = batch;
    let handedOut: string | undefined;
    try {
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) return;
        handedOut = message.offset;
        this.#deliver(topic, partition, message);
        while (isRunning() && !isStale() && (this.#paused || this.#inFlight >= this.#max)) {
          // Resolved before waiting, so that a rebalance while we wait resumes after this record.
          resolveOffset(message.offset);
          await new Promise<void>((resolve) => {
            this.#room = resolve;
            setTimeout(resolve, 1000).unref();
          });
          this.#room = undefined;
          await heartbeat().catch(() => undefined);
        }
      }
    } finally {
      if (handedOut !== undefined) resolveOffset(handedOut);
    }
  };

  #deliver(topic: string, partition: number, message: KafkaMessage): void {
    const offset = Number(message.offset);
    let mark: PartitionWatermark;
    try {
      mark = this.#tracker.delivered(topic, partition, offset);
    } catch {
      this.#inFlight -= this.#tracker.reset(topic, partition); // kafkajs went back: in flight comes again
      mark = this.#tracker.delivered(topic, partition, offset);
    }
    this.#inFlight++;
    const epoch = mark.epoch;
    const headers: Record<string, string> = {};
    let id: string | undefined;
    for (const key in message.headers ?? {}) {
      const raw = message.headers![key];
      const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
      if (value === undefined) continue;
      const text = typeof value === 'string' ? value : value.toString('utf8');
      if (key === ID) id = text;
      else if (key !== ATTEMPTS) headers[key] = text;
    }
    let settled = false;
    const delivery: BatchDelivery = {
      id: id ?? `${topic}/${partition}/${message.offset}`,
      body: message.value ?? new Uint8Array(0),
      headers,
      ack: () => {
        if (settled) return;
        settled = true;
        if (!mark.ack(offset, epoch)) return; // from before a rebalance
        this.#inFlight--;
        this.#room?.();
      },
    };
    try {
      this.#onMessage(delivery);
    } catch (err) {
      this.#onError(err);
    }
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#room?.();
  }

  /** Commits every partition's acked watermark (serialised). */
  commit(): Promise<void> {
    this.#committing = this.#committing.then(async () => {
      const commits = this.#tracker.commits();
      if (commits.length === 0) return;
      try {
        await this.#consumer.commitOffsets(commits);
        this.#tracker.committed(commits);
      } catch (err) {
        this.#onError(err);
      }
    });
    return this.#committing;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.commit();
  }
}
