/**
 * `nsq://` and `nsqlookup://` — NSQ over TCP protocol V2, with Conveyor's own client (no nsqjs).
 *
 * | Conveyor      | NSQ                                                                  |
 * |---------------|----------------------------------------------------------------------|
 * | publish       | PUB / MPUB (publishes of one tick to one topic = one MPUB), DPUB for delayMs |
 * | confirm       | nsqd's OK                                                            |
 * | channel       | SUB topic channel on a connection per nsqd                           |
 * | maxInFlight   | RDY, spread over the connections (sum ≤ maxInFlight)                 |
 * | timeoutMs     | IDENTIFY msg_timeout, clamped to nsqd's 1 s .. 15 min                |
 * | ack / nack(d) | FIN / REQ d (nsqd caps d at --max-req-timeout, 1 h by default)       |
 * | touch         | TOUCH                                                                |
 * | attempts      | nsqd's attempts                                                      |
 * | headers, id   | an envelope in the body (src/core/envelope.ts); a plain body from a foreign producer reads as body with no headers |
 *
 * `nsq://host:4150` talks to one nsqd (more with `?nsqd=host:port`). `nsqlookup://host:4161`
 * asks nsqlookupd which nsqd hold a topic, every lookupIntervalMs, and connects to new ones;
 * it publishes to the first nsqd nsqlookupd lists under /nodes (or `?nsqd=`).
 * Not guaranteed: order (a requeue, a disk overflow or several nsqd reorder) and survival of a
 * crash (nsqd keeps up to --mem-queue-size messages in memory; a clean restart keeps them).
 *
 * @example
 * const transport = await connect('nsq://127.0.0.1:4150');
 * const viaLookup = await connect('nsqlookup://127.0.0.1:4161?lookupIntervalMs=5000');
 */
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import { hostname } from 'node:os';
import type { ConnectOptions, TransportFactory } from '../../core/transport.ts';
import { encodeWithId } from '../../core/envelope.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, OutgoingMessage } from '../../core/message.ts';
import { refuseBinding, sendsBare, type SubscribeOptions, type Subscription, type Transport, type TransportFeatures } from '../../core/transport.ts';
import type { ParsedUrl } from '../../core/url.ts';
import { lookupNodes, lookupTopic } from './lookup.ts';
import { checkName, type HostPort, type NsqOptions, parseNsqOptions } from './options.ts';
import { NsqPublisher } from './publisher.ts';
import { NsqSubscription } from './subscription.ts';

/** nsqd's default --max-req-timeout: the longest DPUB delay it accepts (longer is a fatal E_INVALID). */
export const MAX_DEFER_MS = 3_600_000;

/** nsqd's accepted msg_timeout range (1 s .. its default --max-msg-timeout, 15 min). */
export const MIN_MSG_TIMEOUT_MS = 1_000;
export const MAX_MSG_TIMEOUT_MS = 900_000;

/** Connection trouble that the adapter handles itself (redial) is reported here, not thrown. */
const errors = diagnosticsChannel('conveyor:nsq:error');

export const createTransport: TransportFactory = async (url, options) => new NsqTransport(url, options);

export class NsqTransport implements Transport {
  readonly kind: string;
  readonly features: TransportFeatures;
  readonly options: NsqOptions;
  #lookup: boolean;
  #clientId: string;
  #publisher: NsqPublisher;
  #subs = new Set<NsqSubscription>();
  #pollers = new Set<NodeJS.Timeout>();
  #closing: Promise<void> | undefined;

  constructor(url: ParsedUrl, connectOptions: ConnectOptions = {}) {
    this.options = parseNsqOptions(url);
    this.kind = url.scheme;
    this.#lookup = url.scheme === 'nsqlookup';
    this.#clientId = connectOptions.clientId ?? `conveyor-${process.pid}`;
    this.features = {
      delayedNack: true,
      delayedPublish: true,
      timeoutRedelivery: true,
      touch: true,
      persistent: false,
      guaranteedOrder: false,
      attemptsCounted: true,
      maxMessageBytes: this.options.maxMsgSize,
    };
    this.#publisher = new NsqPublisher(this.options, this.#identify(undefined), () => this.#publishTargets());
  }

  #identify(msgTimeoutMs: number | undefined): Record<string, unknown> {
    const data: Record<string, unknown> = {
      client_id: this.#clientId,
      hostname: hostname(),
      user_agent: 'conveyor/0.1',
      feature_negotiation: true,
      heartbeat_interval: this.options.heartbeatIntervalMs,
    };
    if (msgTimeoutMs !== undefined) data.msg_timeout = msgTimeoutMs;
    if (this.options.outputBufferTimeoutMs > 0) data.output_buffer_timeout = this.options.outputBufferTimeoutMs;
    return data;
  }

  async #publishTargets(): Promise<HostPort[]> {
    if (!this.#lookup) return this.options.nsqd;
    const nodes = await lookupNodes(this.options.lookupd, this.options.connectTimeoutMs).catch(() => []);
    const all = [...this.options.nsqd, ...nodes];
    if (all.length === 0) throw new ConveyorError('ERR_TRANSPORT', 'nsqlookup: no nsqd is registered with nsqlookupd to publish to');
    return all;
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    this.#open();
    checkName('topic', topic);
    const now: Uint8Array[] = [];
    const later: Array<{ body: Uint8Array; delayMs: number }> = [];
    for (const m of messages) {
      const body = sendsBare(this.options.envelope, m) ? m.body : encodeWithId(m.body, m.headers, m.id);
      if (body.length > this.options.maxMsgSize) {
        throw new ConveyorError('ERR_TOO_LARGE', `message of ${body.length} bytes (with headers) is larger than maxMsgSize ${this.options.maxMsgSize}`, {
          details: { size: body.length, limit: this.options.maxMsgSize },
        });
      }
      const delay = m.delayMs ?? 0;
      if (delay > 0) {
        if (!Number.isFinite(delay) || delay > MAX_DEFER_MS) {
          throw new ConveyorError('ERR_BAD_OPTIONS', `delayMs must be at most ${MAX_DEFER_MS} (nsqd's --max-req-timeout), got ${delay}`);
        }
        later.push({ body, delayMs: delay });
      } else {
        now.push(body);
      }
    }
    if (later.length === 0) {
      if (now.length > 0) await this.#publisher.publish(topic, now);
      return;
    }
    const all: Promise<void>[] = later.map((m) => this.#publisher.publishDeferred(topic, m.body, m.delayMs));
    if (now.length > 0) all.push(this.#publisher.publish(topic, now));
    await Promise.all(all);
  }

  async subscribe(topic: string, channel: string, options: SubscribeOptions, onMessage: (d: Delivery) => void): Promise<Subscription> {
    this.#open();
    checkName('topic', topic);
    checkName('channel', channel);
    refuseBinding(this.kind, topic, channel, options.bind);
    const { maxInFlight, timeoutMs } = options;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `maxInFlight must be a positive integer, got ${maxInFlight}`);
    }
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 1)) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `timeoutMs must be a positive integer, got ${timeoutMs}`);
    }
    // nsqd takes a msg_timeout of 1 s to --max-msg-timeout (15 min by default) and drops the
    // connection for anything else: shorter asks wait 1 s, longer ones 15 min.
    const msgTimeout = timeoutMs === undefined ? undefined : Math.min(MAX_MSG_TIMEOUT_MS, Math.max(MIN_MSG_TIMEOUT_MS, timeoutMs));
    const sub = new NsqSubscription(topic, channel, maxInFlight, this.options, this.#identify(msgTimeout), onMessage, (err) => {
      if (errors.hasSubscribers) errors.publish({ topic, channel, error: err });
    });
    const targets = this.#lookup ? await lookupTopic(this.options.lookupd, topic, this.options.connectTimeoutMs) : this.options.nsqd;
    if (!this.#lookup || targets.length > 0) {
      // Direct nsqd that do not answer now are redialed in the background; only if none answers
      // does subscribe fail (a wrong address should be an error, not a silent wait).
      const results = await Promise.allSettled(targets.map((t) => sub.add(t, !this.#lookup)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed && results.every((r) => r.status === 'rejected')) {
        await sub.close();
        throw failed.reason;
      }
    }
    if (this.#lookup) this.#poll(sub);
    sub.whenClosed(() => this.#subs.delete(sub));
    this.#subs.add(sub);
    return sub;
  }

  /** Asks nsqlookupd every lookupIntervalMs for the topic's nsqd; connects to new ones. */
  #poll(sub: NsqSubscription): void {
    const timer = setInterval(() => {
      lookupTopic(this.options.lookupd, sub.topic, this.options.connectTimeoutMs).then(
        (targets) => {
          const listed = new Set(targets.map((t) => `${t.host}:${t.port}`));
          for (const t of targets) sub.add(t, false).catch((err) => errors.hasSubscribers && errors.publish({ topic: sub.topic, error: err }));
          for (const key of sub.addresses) if (!listed.has(key)) sub.forget(key);
        },
        (err) => errors.hasSubscribers && errors.publish({ topic: sub.topic, error: err }),
      );
    }, this.options.lookupIntervalMs);
    timer.unref();
    this.#pollers.add(timer);
    sub.whenClosed(() => {
      clearInterval(timer);
      this.#pollers.delete(timer);
    });
  }

  #open(): void {
    if (this.#closing) throw new ConveyorError('ERR_CLOSED', `${this.kind}:// transport is closed`);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    for (const t of this.#pollers) clearInterval(t);
    await Promise.allSettled([...this.#subs].map((s) => s.close()));
    await this.#publisher.close();
  }
}
