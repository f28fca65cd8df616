import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, Headers } from '../../core/message.ts';
import type { Subscription } from '../../core/transport.ts';

/** What a subscription needs from its transport (kept narrow so the two stay testable apart). */
export interface NatsSubscriptionHost {
  /** Starts pulling; `onMsg` is called synchronously for each message the server pushes. */
  start(batch: number, onMsg: (m: JsMsg) => void): Promise<ConsumerMessages>;
  /** Sets the consumer's max_ack_pending (the server-side bound) from the subscribers' maxInFlight. */
  updateMaxAckPending(): Promise<void>;
  /** Called once the subscription is closed (transport bookkeeping, ephemeral cleanup). */
  closed(sub: NatsSubscription): Promise<void>;
  onError(err: unknown): void;
}

/**
 * One subscriber of a channel: a pull `consume()` on the channel's consumer. The server bounds
 * unacked messages by max_ack_pending; this class also bounds them locally (several
 * subscriptions of one channel share the consumer, and `pause`/`setMaxInFlight` act at once),
 * holding what arrives past the bound unacked until there is room.
 */
export class NatsSubscription implements Subscription {
  readonly topic: string;
  readonly channel: string;
  #host: NatsSubscriptionHost;
  #onMessage: (d: Delivery) => void;
  #max: number;
  /** Unacked deliveries by stream sequence: the server counts max_ack_pending per sequence. */
  #inFlight = new Map<number, NatsDelivery>();
  #held: JsMsg[] = [];
  #paused = false;
  #closed = false;
  #messages: ConsumerMessages | undefined;
  #closing: Promise<void> | undefined;
  /** Set for a bound topic: deliveries carry the subject they were published on as `nats-subject`. */
  subjectHeader = false;

  constructor(topic: string, channel: string, maxInFlight: number, host: NatsSubscriptionHost, onMessage: (d: Delivery) => void) {
    this.topic = topic;
    this.channel = channel;
    this.#max = maxInFlight;
    this.#host = host;
    this.#onMessage = onMessage;
  }

  get maxInFlight(): number {
    return this.#max;
  }

  async start(): Promise<void> {
    this.#messages = await this.#host.start(this.#max, (m) => this.#receive(m));
  }

  #receive(m: JsMsg): void {
    if (this.#closed) {
      m.nak();
      return;
    }
    // A redelivery (ack_wait passed) of a message still held by a handler: the old delivery is
    // stale (its ack/nack is ignored, as nsqd answers a late FIN with E_FIN_FAILED) and the new
    // one takes its slot, so a timed-out message never blocks the bound.
    const seq = m.info.streamSequence;
    const stale = this.#inFlight.get(seq);
    if (stale) {
      stale.expire();
      this.#inFlight.delete(seq);
      this.#deliver(m);
      return;
    }
    if (this.#paused || this.#inFlight.size >= this.#max || this.#held.length > 0) {
      this.#held.push(m);
      return;
    }
    this.#deliver(m);
  }

  #deliver(m: JsMsg): void {
    const d = new NatsDelivery(this, m);
    this.#inFlight.set(d.seq, d);
    try {
      this.#onMessage(d);
    } catch (err) {
      // The contract says onMessage must not throw; if it does, the message is not lost.
      this.#host.onError(err);
    }
  }

  /** A delivery was acked or nacked: make room, hand out what was held. */
  settled(d: NatsDelivery): void {
    this.#inFlight.delete(d.seq);
    this.#drain();
  }

  #drain(): void {
    while (!this.#paused && !this.#closed && this.#held.length > 0 && this.#inFlight.size < this.#max) {
      this.#deliver(this.#held.shift()!);
    }
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (this.#closed) return;
    this.#paused = false;
    this.#drain();
  }

  setMaxInFlight(n: number): void {
    if (!Number.isInteger(n) || n < 1) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `maxInFlight must be a positive integer, got ${n}`);
    }
    this.#max = n;
    this.#host.updateMaxAckPending().catch((err) => this.#host.onError(err));
    this.#drain();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    try {
      this.#messages?.stop();
      await this.#messages?.closed();
    } catch (err) {
      this.#host.onError(err);
    }
    // Return what this subscriber holds to the server now rather than after ack_wait.
    for (const m of this.#held.splice(0)) m.nak();
    for (const d of this.#inFlight.values()) d.release();
    this.#inFlight.clear();
    await this.#host.closed(this);
  }
}

/** One JetStream message handed to a consumer. */
export class NatsDelivery implements Delivery {
  readonly channel: string;
  readonly topic: string;
  #sub: NatsSubscription;
  #m: JsMsg;
  #settled = false;
  #headers: Headers | undefined;
  #id: string | undefined;

  readonly seq: number;

  constructor(sub: NatsSubscription, m: JsMsg) {
    this.#sub = sub;
    this.#m = m;
    this.seq = m.info.streamSequence;
    this.topic = sub.topic;
    this.channel = sub.channel;
  }

  get id(): string {
    if (this.#id === undefined) {
      this.#id = this.#m.headers?.get('Nats-Msg-Id') || `${this.#m.info.stream}:${this.#m.info.streamSequence}`;
    }
    return this.#id;
  }

  get body(): Uint8Array {
    return this.#m.data;
  }

  get headers(): Headers {
    if (this.#headers === undefined) {
      this.#headers = readHeaders(this.#m);
      if (this.#sub.subjectHeader) this.#headers[SUBJECT_HEADER] = this.#m.subject;
    }
    return this.#headers;
  }

  get attempts(): number {
    return this.#m.info.deliveryCount;
  }

  get timestamp(): number {
    return Math.floor(this.#m.info.timestampNanos / 1e6);
  }

  ack(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#m.ack();
    this.#sub.settled(this);
  }

  nack(delayMs = 0): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#m.nak(delayMs > 0 ? delayMs : undefined);
    this.#sub.settled(this);
  }

  touch(): void {
    if (!this.#settled) this.#m.working();
  }

  /** The server redelivered this message (ack_wait passed): later ack/nack/touch are ignored. */
  expire(): void {
    this.#settled = true;
  }

  /** The subscription closed under it: back to the server, later ack/nack ignored. */
  release(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#m.nak();
  }
}

/** The subject a message of a bound topic was published on (`orders.eu.new` for `orders.eu.*`). */
export const SUBJECT_HEADER = 'nats-subject';

/** NATS headers → Conveyor headers: names lower-cased, JetStream's own `Nats-*` left out. */
function readHeaders(m: JsMsg): Headers {
  const out: Headers = {};
  const h = m.headers;
  if (!h) return out;
  for (const key of h.keys()) {
    const lower = key.toLowerCase();
    if (lower.startsWith('nats-')) continue;
    out[lower] = h.get(key);
  }
  return out;
}
