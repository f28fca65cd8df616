import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, Headers } from '../../core/message.ts';
import type { SubscribeOptions, Subscription } from '../../core/transport.ts';
import { encodeMember, entryFields, type Parsed, parseEntry, parsePubSubPayload } from './entry.ts';
import type { RedisClient, RedisTransport } from './index.ts';
import { delayedKey, retryKey } from './options.ts';

/** Moves due delayed retries into the retry stream, atomically, so two pollers never both move one. */
const MOVE_DUE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'm', m)
  redis.call('ZREM', KEYS[1], m)
end
return #due`;

const DEFAULT_TIMEOUT_MS = 60_000;

class RedisDelivery implements Delivery {
  readonly id: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly attempts: number;
  readonly timestamp: number;
  readonly #sub: RedisSubscription;
  readonly stream: string;
  readonly entryId: string;
  #settled = false;

  constructor(sub: RedisSubscription, stream: string, entryId: string, parsed: Parsed, deliveries: number) {
    this.#sub = sub;
    this.stream = stream;
    this.entryId = entryId;
    this.id = parsed.id ?? entryId;
    this.body = parsed.body;
    this.headers = parsed.headers;
    this.timestamp = parsed.timestamp;
    // Redelivery by claim: the broker's delivery count on top of retries already counted.
    this.attempts = parsed.attempts + deliveries - 1;
  }
  get topic(): string {
    return this.#sub.topic;
  }
  get channel(): string {
    return this.#sub.channel;
  }
  ack(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#sub.ack(this);
  }
  nack(delayMs = 0): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#sub.retry(this, delayMs);
  }
  touch(): void {
    if (!this.#settled) this.#sub.touch(this);
  }
  get settled(): boolean {
    return this.#settled;
  }
}

/**
 * One consumer of a channel's consumer group, on its own connection (XREADGROUP BLOCK ties it
 * up). It reads the topic's stream and the channel's retry stream, claims entries other
 * consumers left idle past the timeout, and moves due delayed retries back.
 */
export class RedisSubscription implements Subscription {
  readonly topic: string;
  readonly channel: string;
  readonly #t: RedisTransport;
  readonly #reader: RedisClient;
  readonly #consumer: string;
  readonly #keys: { stream: string; retry: string; delayed: string };
  readonly #timeoutMs: number;
  readonly #onMessage: (d: Delivery) => void;
  readonly #onClose: (s: Subscription) => void;
  readonly #held = new Set<RedisDelivery>();
  #maxInFlight: number;
  #paused = false;
  #closed = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastClaim = 0;
  /** After a failed read: entries Redis gave this consumer may have been lost in transit. */
  #recover = false;

  private constructor(t: RedisTransport, reader: RedisClient, stream: string, topic: string, channel: string, options: SubscribeOptions, onMessage: (d: Delivery) => void, onClose: (s: Subscription) => void) {
    this.#t = t;
    this.#reader = reader;
    this.topic = topic;
    this.channel = channel;
    this.#keys = { stream, retry: retryKey(t.options, topic, channel), delayed: delayedKey(t.options, topic, channel) };
    this.#consumer = `${t.clientName}-${Math.random().toString(36).slice(2, 8)}`;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxInFlight = options.maxInFlight;
    this.#onMessage = onMessage;
    this.#onClose = onClose;
  }

  /** `stream`: the key this subscription reads (the topic's, or its binding). */
  static async start(t: RedisTransport, stream: string, topic: string, channel: string, options: SubscribeOptions, onMessage: (d: Delivery) => void, onClose: (s: Subscription) => void): Promise<RedisSubscription> {
    const sub = new RedisSubscription(t, await t.duplicate(), stream, topic, channel, options, onMessage, onClose);
    for (const key of [sub.#keys.stream, sub.#keys.retry]) {
      await t.client.xgroup('CREATE', key, channel, '$', 'MKSTREAM').catch((e: Error) => {
        if (!/BUSYGROUP/.test(e.message)) throw new ConveyorError('ERR_TRANSPORT', `redis://: cannot create group ${channel} on ${key}: ${e.message}`, { cause: e });
      });
    }
    // ioredis resends a read whose reply the drop lost, so the read does not fail: entries Redis
    // handed to it sit in our pending list unseen. Every reconnect therefore re-reads them.
    sub.#reader.on('reconnecting', () => {
      sub.#recover = true;
    });
    sub.#timer = setInterval(() => sub.#moveDue(), t.options.delayPollMs);
    sub.#timer.unref();
    sub.#loop = sub.#run();
    return sub;
  }

  get #free(): number {
    return this.#maxInFlight - this.#held.size;
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      try {
        if (this.#paused || this.#free <= 0) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
            setTimeout(resolve, this.#t.options.blockMs).unref();
          });
          this.#wake = undefined;
          continue;
        }
        if (this.#recover) {
          this.#recover = false;
          await this.#readOwnPending();
          continue;
        }
        if (Date.now() - this.#lastClaim >= Math.max(50, this.#timeoutMs / 4)) {
          this.#lastClaim = Date.now();
          await this.#claimIdle();
          if (this.#free <= 0 || this.#closed) continue;
        }
        const reply = (await this.#reader.xreadgroupBuffer(
          'GROUP', this.channel, this.#consumer, 'COUNT', this.#free, 'BLOCK', this.#t.options.blockMs,
          'STREAMS', this.#keys.stream, this.#keys.retry, '>', '>',
        )) as Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
        if (!reply) continue;
        for (const [key, entries] of reply) {
          const stream = key.toString();
          for (const [id, fields] of entries) this.#hand(stream, id.toString(), fields, 1);
        }
      } catch {
        if (this.#closed) return;
        this.#recover = true;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /**
   * Re-reads this consumer's own pending entries (XREADGROUP from id 0, page by page): those a
   * read handed us whose reply died with the connection, and those whose XACK was lost. Entries
   * we still hold are skipped; the rest are delivered again (at least once).
   */
  async #readOwnPending(): Promise<void> {
    const holding = new Set([...this.#held].map((d) => d.entryId));
    for (const key of [this.#keys.stream, this.#keys.retry]) {
      let after = '0';
      while (this.#free > 0 && !this.#closed) {
        const count = this.#free + holding.size;
        const reply = (await this.#reader.xreadgroupBuffer('GROUP', this.channel, this.#consumer, 'COUNT', count, 'STREAMS', key, after)) as Array<
          [Buffer, Array<[Buffer, Buffer[] | null]>]
        > | null;
        const entries = reply?.[0]?.[1] ?? [];
        for (const [id, fields] of entries) {
          after = id.toString();
          if (fields && !holding.has(after)) this.#hand(key, after, fields, 2);
        }
        if (entries.length < count) break;
      }
    }
  }

  #hand(stream: string, entryId: string, fields: Buffer[], deliveries: number): void {
    let parsed: Parsed;
    try {
      parsed = parseEntry(fields, entryId);
    } catch {
      // An entry not written by Conveyor: pass its raw fields as the body rather than drop it.
      parsed = { body: Buffer.concat(fields), headers: {}, id: undefined, timestamp: Date.now(), attempts: 1 };
    }
    const d = new RedisDelivery(this, stream, entryId, parsed, deliveries);
    if (this.#paused || this.#closed) {
      // Read after a pause: hand it straight back (to the channel's retry stream).
      this.retry(d, 0);
      return;
    }
    this.#held.add(d);
    this.#onMessage(d);
  }

  /** Entries any consumer of the group left unacked for timeoutMs come to this one (timeout redelivery). */
  async #claimIdle(): Promise<void> {
    for (const stream of [this.#keys.stream, this.#keys.retry]) {
      const pending = (await this.#t.client.xpending(stream, this.channel, 'IDLE', this.#timeoutMs, '-', '+', this.#free)) as Array<[string, string, number, number]>;
      if (!pending.length) continue;
      const ids = pending.map((p) => p[0]);
      const counts = new Map(pending.map((p) => [p[0], Number(p[3])]));
      const claimed = (await this.#t.client.callBuffer('XCLAIM', stream, this.channel, this.#consumer, this.#timeoutMs, ...ids)) as Array<[Buffer, Buffer[]] | null>;
      for (const entry of claimed) {
        if (!entry) continue;
        const id = entry[0].toString();
        this.#hand(stream, id, entry[1], (counts.get(id) ?? 1) + 1);
      }
    }
  }

  async #moveDue(): Promise<void> {
    if (this.#closed) return;
    await this.#t.client.eval(MOVE_DUE, 2, this.#keys.delayed, this.#keys.retry, String(Date.now())).catch(() => undefined);
  }

  #release(d: RedisDelivery): void {
    this.#held.delete(d);
    this.#wake?.();
  }

  ack(d: RedisDelivery): void {
    this.#release(d);
    this.#t.client.xack(d.stream, this.channel, d.entryId).catch(() => {
      // Lost with the connection: the entry stays pending and is claimed again after the timeout.
    });
  }

  /** Copy to the retry stream (no delay) or the delayed set, and XACK the original, in one MULTI. */
  retry(d: RedisDelivery, delayMs: number): void {
    this.#release(d);
    const member = encodeMember(entryFields({ id: d.id, body: d.body, headers: d.headers }, String(d.timestamp), d.attempts + 1));
    const multi = this.#t.client.multi();
    if (delayMs > 0) multi.zadd(this.#keys.delayed, Date.now() + delayMs, member);
    else multi.xadd(this.#keys.retry, '*', 'm', member);
    multi.xack(d.stream, this.channel, d.entryId);
    multi.exec().catch(() => {
      // Not applied: the original stays pending and comes back after the timeout.
    });
  }

  touch(d: RedisDelivery): void {
    this.#t.client.xclaim(d.stream, this.channel, this.#consumer, 0, d.entryId, 'JUSTID').catch(() => undefined);
  }

  pause(): void {
    this.#paused = true;
  }
  resume(): void {
    this.#paused = false;
    this.#wake?.();
  }
  setMaxInFlight(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new ConveyorError('ERR_BAD_OPTIONS', `redis://: maxInFlight must be a positive integer, got ${n}`);
    this.#maxInFlight = n;
    this.#wake?.();
  }

  /**
   * Leave: let the current read finish (at most blockMs; what it brings is handed back), then
   * hand every unacked delivery back through the retry stream, so the next consumer of the
   * channel gets them now rather than after the claim timeout.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose(this);
    if (this.#timer) clearInterval(this.#timer);
    this.#wake?.();
    // A read stuck in a reconnect would never end by itself: cut it after two block periods.
    if (this.#loop) await bounded(this.#loop, this.#t.options.blockMs * 2);
    this.#reader.disconnect();
    if (this.#loop) await bounded(this.#loop, this.#t.options.blockMs * 2);
    for (const d of [...this.#held]) if (!d.settled) d.nack(0);
    // Let the hand-backs reach Redis before the caller closes the main connection.
    await bounded(this.#t.client.ping(), 1000);
  }
}

/** Waits for `p`, but no longer than `ms` (a command queued while Redis is unreachable waits forever). */
export async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** `#ephemeral` topics: Redis Pub/Sub, every subscriber gets every message; nothing to ack. */
export class PubSubSubscription implements Subscription {
  readonly #client: RedisClient;
  readonly #onClose: (s: Subscription) => void;
  #paused = false;

  private constructor(client: RedisClient, onClose: (s: Subscription) => void) {
    this.#client = client;
    this.#onClose = onClose;
  }

  /** `key`: the Pub/Sub channel subscribed (the topic's, or its binding). */
  static async start(t: RedisTransport, key: string, topic: string, channel: string, onMessage: (d: Delivery) => void, onClose: (s: Subscription) => void): Promise<PubSubSubscription> {
    const client = await t.duplicate();
    const sub = new PubSubSubscription(client, onClose);
    // Buffers, not strings: a body is bytes (CBOR), and a foreign PUBLISH may not be UTF-8.
    client.on('messageBuffer', (_ch: Buffer, payload: Buffer) => {
      if (sub.#paused) return;
      const p = parsePubSubPayload(payload);
      const noop = () => {};
      onMessage({ id: p.id, topic, channel, body: p.body, headers: p.headers, attempts: 1, timestamp: p.timestamp, ack: noop, nack: noop, touch: noop });
    });
    await client.subscribe(key);
    return sub;
  }

  pause(): void {
    this.#paused = true;
  }
  resume(): void {
    this.#paused = false;
  }
  setMaxInFlight(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new ConveyorError('ERR_BAD_OPTIONS', `redis://: maxInFlight must be a positive integer, got ${n}`);
  }
  async close(): Promise<void> {
    this.#onClose(this);
    await bounded(this.#client.quit(), 1000);
    this.#client.disconnect();
  }
}
