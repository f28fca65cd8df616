import type { Consumer, EachMessagePayload, KafkaMessage } from 'kafkajs';
import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, Headers } from '../../core/message.ts';
import type { Subscription } from '../../core/transport.ts';
import { type PartitionWatermark, WatermarkTracker } from './watermark.ts';

/** kafkajs' own test (errors.js `isRebalancing`): the group is rebalancing, rejoin. */
function isRebalancing(err: unknown): boolean {
  const type = (err as { type?: string } | undefined)?.type;
  return type === 'REBALANCE_IN_PROGRESS' || type === 'NOT_COORDINATOR_FOR_GROUP' || type === 'ILLEGAL_GENERATION';
}

/** Pause before a crashed member is started again (kafkajs' own restart waits ~300 ms and up). */
const RESTART_AFTER_CRASH_MS = 1000;

/** Headers Conveyor sets on every record (Kafka counts no attempts). */
export const PROP = { id: 'conveyor-id', attempts: 'conveyor-attempts' } as const;

export interface KafkaSubscriptionHost {
  /**
   * Republishes a nacked record's copy to the channel's retry topic, carrying `id` (the delivery's,
   * so that a foreign record without `conveyor-id` keeps its id); resolves once acked by the brokers.
   */
  republish(message: KafkaMessage, attempts: number, id: string): Promise<void>;
  onError(err: unknown): void;
}

/**
 * One member of the consumer group that is a channel. kafkajs fetches; each record is handed
 * out synchronously and tracked in a per-partition watermark; the handler's ack marks it done,
 * and a timer commits every partition's contiguous acked run. While maxInFlight records are
 * unacked the fetch loop waits, heartbeating, so that Kafka itself holds the rest (backpressure).
 * pause() pauses kafkajs' fetching of the channel's topics as well: a paused member must not go
 * on fetching and decoding records it will not hand out (they cost CPU while the application
 * does other work, and come again anyway after resume, from the last record handed out).
 *
 * Rebalance: on REBALANCING the watermarks are committed (this member still owns its
 * partitions); on GROUP_JOIN every watermark is dropped, since kafkajs resumes each partition it
 * keeps from the committed offset: records in flight are delivered again and their late acks
 * are ignored. Nothing is skipped, and nothing acked is committed twice past the next owner.
 */
export class KafkaSubscription implements Subscription {
  readonly topic: string;
  readonly channel: string;
  #consumer: Consumer;
  #host: KafkaSubscriptionHost;
  #onMessage: (d: Delivery) => void;
  #tracker = new WatermarkTracker();
  #max: number;
  #inFlight = 0;
  #paused = false;
  /** kafkajs has paused fetching the topics (so eachMessage need not hold its loop while paused). */
  #fetchPaused = false;
  #topics: ReadonlyArray<{ topic: string }>;
  #closed = false;
  #room: (() => void) | undefined;
  #commitTimer: NodeJS.Timeout;
  #committing: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;
  #whenClosed: Array<() => void> = [];
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(
    topic: string,
    channel: string,
    consumer: Consumer,
    /** The Kafka topics the member reads (the channel's topic and its retry topic): paused by pause(). */
    topics: readonly string[],
    maxInFlight: number,
    commitIntervalMs: number,
    host: KafkaSubscriptionHost,
    onMessage: (d: Delivery) => void,
  ) {
    this.topic = topic;
    this.channel = channel;
    this.#consumer = consumer;
    this.#topics = topics.map((topic) => ({ topic }));
    this.#max = maxInFlight;
    this.#host = host;
    this.#onMessage = onMessage;
    this.#commitTimer = setInterval(() => void this.commit(), commitIntervalMs);
    this.#commitTimer.unref();
    consumer.on(consumer.events.REBALANCING, () => void this.commit());
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || this.#closed) return;
      // kafkajs restarts itself only after retriable errors; after any other (librdkafka's mock
      // answers a SyncGroup racing a join with INVALID_REQUEST) the member would be gone for good
      // while the application believes it consumes. Say so, and start it again.
      this.#host.onError(payload.error);
      clearTimeout(this.#restartTimer);
      this.#restartTimer = setTimeout(() => {
        if (!this.#closed) this.start().catch((err) => this.#host.onError(err));
      }, RESTART_AFTER_CRASH_MS);
    });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const { topic: t, partition } of this.#tracker.partitions()) this.#tracker.revoke(t, partition);
      this.#inFlight = 0;
      if (this.#paused) this.#pauseFetching(); // a member started again after a crash has a new group state
      this.#wake();
    });
  }

  /** Starts kafkajs' fetch loop (again after a crash kafkajs does not recover from itself). */
  start(): Promise<void> {
    return this.#consumer.run({ autoCommit: false, eachMessage: this.eachMessage });
  }

  /** kafkajs' eachMessage: hand the record out, then wait while there is no room for the next. */
  readonly eachMessage = async ({ topic, partition, message, heartbeat }: EachMessagePayload): Promise<void> => {
    if (this.#closed) return;
    const offset = Number(message.offset);
    let mark: PartitionWatermark;
    try {
      mark = this.#tracker.delivered(topic, partition, offset);
    } catch {
      // kafkajs went back on this partition (seek, offset reset): what was in flight comes again.
      this.#inFlight -= this.#tracker.reset(topic, partition);
      mark = this.#tracker.delivered(topic, partition, offset);
    }
    this.#inFlight++;
    const d = new KafkaDelivery(this, mark, mark.epoch, topic, partition, message);
    try {
      this.#onMessage(d);
    } catch (err) {
      this.#host.onError(err);
    }
    // Paused with kafkajs' fetching paused too: return, and kafkajs stops this batch after the
    // record just handed out (the rest is fetched again after resume).
    while (!this.#closed && ((this.#paused && !this.#fetchPaused) || this.#inFlight >= this.#max)) {
      await new Promise<void>((resolve) => {
        this.#room = resolve;
        // Heartbeat while waiting, so a slow handler does not cost this member its partitions.
        setTimeout(resolve, 1000).unref();
      });
      this.#room = undefined;
      try {
        await heartbeat();
      } catch (err) {
        // A full member must still take part in a rebalance, or the whole group waits for its room
        // (up to the rebalance timeout): kafkajs rejoins when eachMessage throws this. What is in
        // flight comes again after the join (GROUP_JOIN drops the watermarks).
        if (isRebalancing(err)) throw err;
      }
    }
  };

  #wake(): void {
    this.#room?.();
  }

  /** @internal */
  settled(mark: PartitionWatermark, epoch: number, offset: number): void {
    if (!mark.ack(offset, epoch)) return; // from before a rebalance: already dropped
    this.#inFlight--;
    this.#wake();
  }

  /** @internal nack: after `delayMs`, copy to the retry topic; once that is acked, ack the original. */
  retry(d: KafkaDelivery, message: KafkaMessage, delayMs: number): void {
    const go = () => {
      if (this.#closed) return;
      this.#host.republish(message, d.attempts + 1, d.id).then(
        () => d.settle(),
        (err) => this.#host.onError(err), // left unacked: redelivered after the next rebalance or restart
      );
    };
    if (delayMs > 0) setTimeout(go, delayMs).unref();
    else go();
  }

  /** Commits every partition's acked watermark (serialised: commits never overtake each other). */
  commit(): Promise<void> {
    this.#committing = this.#committing.then(async () => {
      const commits = this.#tracker.commits();
      if (commits.length === 0) return;
      try {
        await this.#consumer.commitOffsets(commits);
        this.#tracker.committed(commits);
      } catch (err) {
        this.#host.onError(err); // retried on the next tick with whatever has moved since
      }
    });
    return this.#committing;
  }

  pause(): void {
    this.#paused = true;
    this.#pauseFetching();
  }

  #pauseFetching(): void {
    try {
      this.#consumer.pause([...this.#topics]);
      this.#fetchPaused = true;
    } catch (err) {
      // Not running (kafkajs has no group yet): eachMessage holds its loop instead, as for backpressure.
      this.#fetchPaused = false;
      this.#host.onError(err);
    }
  }

  resume(): void {
    if (this.#closed) return;
    this.#paused = false;
    if (this.#fetchPaused) {
      this.#fetchPaused = false;
      try {
        this.#consumer.resume([...this.#topics]);
      } catch (err) {
        this.#host.onError(err);
      }
    }
    this.#wake();
  }

  setMaxInFlight(n: number): void {
    if (!Number.isInteger(n) || n < 1) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `maxInFlight must be a positive integer, got ${n}`);
    }
    this.#max = n;
    this.#wake();
  }

  whenClosed(fn: () => void): void {
    this.#whenClosed.push(fn);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Stop handing out first, then commit what was acked so far, then leave the group.
    this.#closed = true;
    this.#wake();
    clearInterval(this.#commitTimer);
    clearTimeout(this.#restartTimer);
    for (const fn of this.#whenClosed.splice(0)) fn();
    await this.commit();
    // Leaving the group: what was not committed is read again by the members that remain.
    await this.#consumer.disconnect().catch((err) => this.#host.onError(err));
  }
}

/** One Kafka record handed to a consumer. */
export class KafkaDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly channel: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly attempts: number;
  readonly timestamp: number;
  #sub: KafkaSubscription;
  #mark: PartitionWatermark;
  #epoch: number;
  #offset: number;
  #message: KafkaMessage;
  #settled = false;

  constructor(sub: KafkaSubscription, mark: PartitionWatermark, epoch: number, topic: string, partition: number, message: KafkaMessage) {
    this.#sub = sub;
    this.#mark = mark;
    this.#epoch = epoch;
    this.#offset = Number(message.offset);
    this.#message = message;
    this.topic = sub.topic;
    this.channel = sub.channel;
    this.body = message.value ?? new Uint8Array(0);
    const headers: Headers = {};
    let id: string | undefined;
    let attempts = 1;
    for (const key in message.headers ?? {}) {
      const raw = message.headers![key];
      const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
      if (value === undefined) continue;
      const text = typeof value === 'string' ? value : value.toString('utf8');
      if (key === PROP.id) id = text;
      else if (key === PROP.attempts) attempts = Number(text) || 1;
      else headers[key] = text;
    }
    this.id = id ?? `${topic}/${partition}/${message.offset}`;
    this.attempts = attempts;
    this.timestamp = Number(message.timestamp) || Date.now();
    this.headers = headers;
  }

  /** @internal Marks the record done in its partition's watermark. */
  settle(): void {
    this.#sub.settled(this.#mark, this.#epoch, this.#offset);
  }

  ack(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.settle();
  }

  nack(delayMs = 0): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#sub.retry(this, this.#message, delayMs);
  }

  /** Kafka has no per-record timeout to restart (the member's heartbeat is kafkajs'). */
  touch(): void {}
}
