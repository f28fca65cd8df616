import { openWithId } from '../../core/envelope.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, Headers } from '../../core/message.ts';
import type { Subscription } from '../../core/transport.ts';
import { NsqConnection } from './connection.ts';
import type { HostPort, NsqOptions } from './options.ts';
import { finCommand, rdyCommand, reqCommand, subCommand, touchCommand, type WireMessage } from './wire.ts';

/** One nsqd this subscription reads from: its live connection (if any) and RDY bookkeeping. */
interface Link {
  key: string;
  target: HostPort;
  conn: NsqConnection | undefined;
  /** Unacked deliveries handed out from the current connection. */
  inFlight: number;
  /** RDY last sent on the current connection. */
  rdy: number;
  maxRdy: number;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  removed: boolean;
}

/**
 * One subscriber of a channel: a connection per nsqd (SUB topic channel), RDY spread over them
 * so that their sum never passes maxInFlight (nsqd treats RDY as a window: it sends while the
 * connection's in-flight count is below it). With fewer slots than connections, the slots rotate
 * every rdyRedistributeMs (as go-nsq does) so that no nsqd is starved. Lost connections are
 * redialed with exponential backoff; nsqd requeues what was in flight on them, and a late
 * ack of such a delivery is ignored.
 */
export class NsqSubscription implements Subscription {
  readonly topic: string;
  readonly channel: string;
  #options: NsqOptions;
  #identify: Record<string, unknown>;
  #onMessage: (d: Delivery) => void;
  #onError: (err: unknown) => void;
  #links = new Map<string, Link>();
  #max: number;
  #paused = false;
  #closed = false;
  #rotation = 0;
  #rotateTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #whenClosed: Array<() => void> = [];

  constructor(
    topic: string,
    channel: string,
    maxInFlight: number,
    options: NsqOptions,
    identify: Record<string, unknown>,
    onMessage: (d: Delivery) => void,
    onError: (err: unknown) => void,
  ) {
    this.topic = topic;
    this.channel = channel;
    this.#max = maxInFlight;
    this.#options = options;
    this.#identify = identify;
    this.#onMessage = onMessage;
    this.#onError = onError;
  }

  /**
   * Adds an nsqd and connects to it; resolves once subscribed. If the first dial fails it rejects,
   * and either keeps redialing in the background (`keepOnFailure`, a configured nsqd) or forgets
   * the address (a discovered one: the next lookup brings it back).
   */
  async add(target: HostPort, keepOnFailure: boolean): Promise<void> {
    const key = `${target.host}:${target.port}`;
    if (this.#links.has(key) || this.#closed) return;
    const link: Link = { key, target, conn: undefined, inFlight: 0, rdy: 0, maxRdy: 2500, attempt: 0, timer: undefined, removed: false };
    this.#links.set(key, link);
    try {
      await this.#dial(link);
    } catch (err) {
      if (keepOnFailure && !this.#closed) this.#scheduleRedial(link);
      else this.#links.delete(key);
      throw err;
    }
  }

  /** Runs `fn` once the subscription is closed. */
  whenClosed(fn: () => void): void {
    this.#whenClosed.push(fn);
  }

  /** Stops using an nsqd that discovery no longer lists, once its connection is down. */
  forget(key: string): void {
    const link = this.#links.get(key);
    if (!link || link.conn?.alive) return;
    link.removed = true;
    clearTimeout(link.timer);
    this.#links.delete(key);
  }

  get addresses(): string[] {
    return [...this.#links.keys()];
  }

  async #dial(link: Link): Promise<void> {
    const conn = new NsqConnection(
      {
        ...link.target,
        identify: this.#identify,
        connectTimeoutMs: this.#options.connectTimeoutMs,
        heartbeatIntervalMs: this.#options.heartbeatIntervalMs,
        maxFrameBytes: this.#options.maxMsgSize + 64 + (1 << 16),
        security: this.#options.security,
      },
      {
        onMessage: (m, c) => this.#receive(link, c, m),
        onClose: (err, c) => this.#lost(link, c, err),
      },
    );
    try {
      const identity = await conn.open();
      await conn.command(subCommand(this.topic, this.channel));
      if (this.#closed || link.removed) {
        await conn.close();
        return;
      }
      link.maxRdy = identity.max_rdy_count ?? 2500;
      link.conn = conn;
      link.inFlight = 0;
      link.rdy = 0;
      link.attempt = 0;
      this.#rebalance();
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  #lost(link: Link, conn: NsqConnection, err: unknown): void {
    if (link.conn !== conn) return;
    link.conn = undefined;
    // nsqd requeues what was in flight on a closed connection; those deliveries are void now.
    link.inFlight = 0;
    link.rdy = 0;
    if (this.#closed || link.removed) return;
    this.#onError(err);
    this.#rebalance();
    this.#scheduleRedial(link);
  }

  #scheduleRedial(link: Link): void {
    const { reconnectMinMs, reconnectMaxMs } = this.#options;
    const base = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** link.attempt);
    link.attempt++;
    const wait = base / 2 + Math.random() * (base / 2);
    link.timer = setTimeout(() => {
      link.timer = undefined;
      if (this.#closed || link.removed) return;
      this.#dial(link).catch(() => this.#scheduleRedial(link));
    }, wait);
  }

  #receive(link: Link, conn: NsqConnection, m: WireMessage): void {
    // Sent before nsqd saw our CLS: not handed out; nsqd requeues it when the socket closes.
    if (this.#closed || link.conn !== conn) return;
    link.inFlight++;
    // A malformed envelope reads as a plain body (openWithId): decoding fails a layer up with
    // ERR_DECODE and the message goes to dead-letter intact.
    const { body, headers, id } = openWithId(m.body);
    const d = new NsqDelivery(this, link, conn, m, id ?? m.id, body, headers);
    try {
      this.#onMessage(d);
    } catch (err) {
      this.#onError(err);
    }
  }

  /** @internal A delivery from `link`'s current connection was FINished or REQueued. */
  settled(link: Link): void {
    link.inFlight--;
    // Only the rotation case needs a new RDY on settle: a slot may now move to a starved nsqd.
    if (this.#max < this.#liveCount()) this.#rebalance();
  }

  #liveCount(): number {
    let n = 0;
    for (const l of this.#links.values()) if (l.conn?.alive) n++;
    return n;
  }

  /** Sets RDY on every live connection so that the sum of in-flight never passes maxInFlight. */
  #rebalance(): void {
    const live: Link[] = [];
    for (const l of this.#links.values()) if (l.conn?.alive) live.push(l);
    const n = live.length;
    if (n === 0) return;
    if (this.#paused || this.#closed) {
      for (const l of live) this.#setRdy(l, 0);
      return;
    }
    if (this.#max >= n) {
      const per = Math.floor(this.#max / n);
      const extra = this.#max % n;
      for (let i = 0; i < n; i++) this.#setRdy(live[i]!, Math.min(live[i]!.maxRdy, per + (i < extra ? 1 : 0)));
      this.#stopRotation();
      return;
    }
    // Fewer slots than connections: `max` of them get RDY 1, starting at the rotation offset;
    // a connection still holding deliveries keeps using its slot until they settle.
    let budget = this.#max;
    for (const l of live) budget -= l.inFlight;
    const chosen = new Set<Link>();
    for (let k = 0; k < n && chosen.size < this.#max; k++) chosen.add(live[(this.#rotation + k) % n]!);
    for (const l of live) {
      // RDY 1 on a connection already holding one delivery lets nothing more through until it settles.
      if (chosen.has(l) && (l.inFlight > 0 || budget > 0)) {
        if (l.inFlight === 0) budget--;
        this.#setRdy(l, 1);
      } else {
        this.#setRdy(l, 0);
      }
    }
    this.#startRotation();
  }

  #setRdy(link: Link, n: number): void {
    if (link.rdy === n || !link.conn) return;
    link.rdy = n;
    link.conn.write(rdyCommand(n));
  }

  #startRotation(): void {
    if (this.#rotateTimer) return;
    this.#rotateTimer = setInterval(() => {
      this.#rotation++;
      this.#rebalance();
    }, this.#options.rdyRedistributeMs);
    this.#rotateTimer.unref();
  }

  #stopRotation(): void {
    clearInterval(this.#rotateTimer);
    this.#rotateTimer = undefined;
  }

  pause(): void {
    this.#paused = true;
    this.#rebalance();
  }

  resume(): void {
    if (this.#closed) return;
    this.#paused = false;
    this.#rebalance();
  }

  setMaxInFlight(n: number): void {
    if (!Number.isInteger(n) || n < 1) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `maxInFlight must be a positive integer, got ${n}`);
    }
    this.#max = n;
    this.#rebalance();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#stopRotation();
    for (const fn of this.#whenClosed.splice(0)) fn();
    const closing: Promise<void>[] = [];
    for (const l of this.#links.values()) {
      clearTimeout(l.timer);
      const conn = l.conn;
      l.conn = undefined;
      if (conn) closing.push(conn.close());
    }
    await Promise.all(closing);
  }
}

/** One NSQ message handed to a consumer. FIN/REQ/TOUCH go on the connection it came from. */
export class NsqDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly channel: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly attempts: number;
  readonly timestamp: number;
  #sub: NsqSubscription;
  #link: Link;
  #conn: NsqConnection;
  #nsqId: string;
  #settled = false;

  constructor(sub: NsqSubscription, link: Link, conn: NsqConnection, m: WireMessage, id: string, body: Uint8Array, headers: Headers) {
    this.#sub = sub;
    this.#link = link;
    this.#conn = conn;
    this.#nsqId = m.id;
    this.id = id;
    this.topic = sub.topic;
    this.channel = sub.channel;
    this.body = body;
    this.headers = headers;
    this.attempts = m.attempts;
    this.timestamp = m.timestamp;
  }

  /** Whether FIN/REQ still mean something: the connection it came on is the link's current one. */
  #current(): boolean {
    return this.#link.conn === this.#conn && this.#conn.alive;
  }

  ack(): void {
    if (this.#settled) return;
    this.#settled = true;
    if (!this.#current()) return;
    this.#conn.write(finCommand(this.#nsqId));
    this.#sub.settled(this.#link);
  }

  nack(delayMs = 0): void {
    if (this.#settled) return;
    this.#settled = true;
    if (!this.#current()) return;
    this.#conn.write(reqCommand(this.#nsqId, delayMs));
    this.#sub.settled(this.#link);
  }

  touch(): void {
    if (!this.#settled && this.#current()) this.#conn.write(touchCommand(this.#nsqId));
  }
}
