/**
 * `nats://` — NATS JetStream.
 *
 * | Conveyor       | JetStream                                                              |
 * |----------------|------------------------------------------------------------------------|
 * | topic          | a stream per topic (`CONVEYOR_<topic>`, subject = topic), file storage |
 * | channel        | a durable pull consumer (explicit ack, deliver new)                    |
 * | `#ephemeral`   | a consumer the server deletes after `ephemeralInactiveMs` unused, memory storage |
 * | ack / nack(d)  | ack / nak(delay)                                                       |
 * | touch          | working() (+WPI)                                                       |
 * | timeoutMs      | ack_wait                                                               |
 * | maxInFlight    | max_ack_pending = sum over this process' subscribers of the channel, and a local bound per subscriber |
 * | attempts       | the server's delivery count                                            |
 * | headers        | NATS headers; `OutgoingMessage.id` → `Nats-Msg-Id` (server-side dedup) |
 * | confirm        | PubAck, every message of a call awaited together                       |
 *
 * Existing topologies (`bind.`, options.ts): `?bind.<topic>=<stream>/<subject>` reads and
 * publishes an existing stream (never created or updated), the subject as is;
 * `?bind.<topic>:<channel>=<consumer>` reads an existing durable pull consumer as configured.
 * `?envelope=false` publishes bare bodies (no headers but `Nats-Msg-Id`).
 *
 * Not supported: `delayMs` on publish (JetStream has no per-message delay before 2.12's
 * schedules; a delayed publish is rejected with ERR_BAD_OPTIONS, never sent early).
 * Reconnects are the client's (forever, `reconnectWaitMs` apart); pull consumers resume by
 * themselves after a reconnect.
 *
 * @example
 * const transport = await connect('nats://127.0.0.1:4222?retention=limits&maxAgeMs=86400000');
 */
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import type { ConsumerConfig, JetStreamClient, JetStreamManager, StreamConfig } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import type { ConnectOptions, TransportFactory } from '../../core/transport.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, OutgoingMessage } from '../../core/message.ts';
import { loadOptional } from '../../core/optional.ts';
import { type SubscribeOptions, type Subscription, sendsBare, type Transport, type TransportFeatures } from '../../core/transport.ts';
import type { ParsedUrl } from '../../core/url.ts';
import { checkConsumer, findStream, isCode, sourceOf } from './bind.ts';
import { checkName, consumerName, isEphemeral, isFilter, type NatsOptions, type NatsTarget, parseNatsOptions, streamName, subjectOf } from './options.ts';
import { NatsSubscription } from './subscription.ts';

type JetStreamModule = typeof import('@nats-io/jetstream');
type NatsNodeModule = typeof import('@nats-io/transport-node');

const FEATURE = 'nats:// transport';

/** Trouble the adapter survives (a failed consumer update, a throwing handler) is reported here. */
const errors = diagnosticsChannel('conveyor:nats:error');

export const createTransport: TransportFactory = async (url, options) => NatsTransport.connect(url, options);

export class NatsTransport implements Transport {
  readonly kind = 'nats';
  readonly features: TransportFeatures;
  readonly options: NatsOptions;
  #nc: NatsConnection;
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #mod: JetStreamModule;
  #core: NatsNodeModule;
  /** Stream name per topic (Conveyor's, made on first use) or per bound target (found, never made). */
  #streams = new Map<string, Promise<string>>();
  #consumers = new Map<string, Promise<void>>();
  #subs = new Set<NatsSubscription>();
  #pending = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  private constructor(
    nc: NatsConnection,
    js: JetStreamClient,
    jsm: JetStreamManager,
    mod: JetStreamModule,
    core: NatsNodeModule,
    options: NatsOptions,
  ) {
    this.#nc = nc;
    this.#js = js;
    this.#jsm = jsm;
    this.#mod = mod;
    this.#core = core;
    this.options = options;
    this.features = {
      delayedNack: true,
      delayedPublish: false,
      timeoutRedelivery: true,
      touch: true,
      persistent: options.storage === 'file',
      guaranteedOrder: true,
      attemptsCounted: true,
      maxMessageBytes: nc.info?.max_payload ?? 1024 * 1024,
      bind: true,
    };
  }

  static async connect(url: ParsedUrl, connectOptions: ConnectOptions = {}): Promise<NatsTransport> {
    const options = parseNatsOptions(url);
    const [core, mod] = await Promise.all([
      loadOptional<NatsNodeModule>('@nats-io/transport-node', FEATURE),
      loadOptional<JetStreamModule>('@nats-io/jetstream', FEATURE),
    ]);
    let nc: NatsConnection;
    try {
      nc = await core.connect({
        servers: options.server,
        user: options.user,
        pass: options.pass,
        token: options.token,
        name: connectOptions.clientId,
        maxReconnectAttempts: -1,
        reconnectTimeWait: options.reconnectWaitMs,
        // Stay on the URL given (a proxy, a load balancer), not the addresses the server advertises.
        ignoreClusterUpdates: true,
      });
    } catch (cause) {
      throw new ConveyorError('ERR_TRANSPORT', `nats:// could not connect to ${options.server}: ${(cause as Error).message}`, { cause });
    }
    const jsm = await mod.jetstreamManager(nc).catch(async (cause: unknown) => {
      await nc.close();
      throw new ConveyorError('ERR_TRANSPORT', `nats:// JetStream is not available on ${options.server}: ${(cause as Error).message}`, { cause });
    });
    return new NatsTransport(nc, mod.jetstream(nc, { timeout: options.publishTimeoutMs }), jsm, mod, core, options);
  }

  /** The raw connection, for tests and tools (stream cleanup). */
  get connection(): NatsConnection {
    return this.#nc;
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    this.#open();
    checkName('topic', topic);
    checkSubject(topic);
    const max = this.features.maxMessageBytes;
    for (const m of messages) {
      if (m.body.length > max) {
        throw new ConveyorError('ERR_TOO_LARGE', `message of ${m.body.length} bytes is larger than the server's max_payload ${max}`, {
          details: { size: m.body.length, limit: max },
        });
      }
      if (m.delayMs !== undefined && m.delayMs > 0) {
        throw new ConveyorError('ERR_BAD_OPTIONS', 'nats:// cannot delay a publish (features.delayedPublish is false)');
      }
    }
    const target = this.options.topics.get(topic);
    if (target && isFilter(target.subject)) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `nats:// topic ${topic} is bound to the filter ${JSON.stringify(target.subject)}: it can be consumed, not published to`, {
        details: { topic, ...target },
      });
    }
    if (messages.length === 0) return;
    const work = this.#publish(topic, messages, target);
    this.#pending.add(work);
    try {
      await work;
    } finally {
      this.#pending.delete(work);
    }
  }

  async #publish(topic: string, messages: OutgoingMessage[], target: NatsTarget | undefined): Promise<void> {
    // A bound stream is checked to exist; JetStream lets no two streams hold one subject.
    await this.#ensureStream(topic, target);
    const subject = target?.subject ?? subjectOf(this.options, topic);
    const acks = new Array<Promise<unknown>>(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      // Bare: Nats-Msg-Id stays, it is JetStream's own dedup of a republished batch, not Conveyor's.
      acks[i] = this.#js.publish(subject, m.body, { msgID: m.id, headers: sendsBare(this.options.envelope, m) ? undefined : this.#headers(m) });
    }
    const results = await Promise.allSettled(acks);
    let failed = 0;
    let cause: unknown;
    for (const r of results) {
      if (r.status === 'rejected') {
        failed++;
        cause ??= r.reason;
      }
    }
    if (failed > 0) {
      throw new ConveyorError(
        'ERR_NOT_CONFIRMED',
        `nats:// ${failed} of ${messages.length} messages to ${topic} were not confirmed: ${(cause as Error)?.message}`,
        { cause, retryable: true, details: { topic, failed } },
      );
    }
  }

  #headers(m: OutgoingMessage): MsgHdrs | undefined {
    if (!m.headers) return undefined;
    let h: MsgHdrs | undefined;
    for (const key in m.headers) {
      h ??= this.#core.headers();
      try {
        h.set(key, m.headers[key]!);
      } catch (cause) {
        throw new ConveyorError('ERR_ENCODE', `header ${JSON.stringify(key)} cannot be sent as a NATS header: ${(cause as Error).message}`, {
          cause,
        });
      }
    }
    return h;
  }

  #ensureStream(topic: string, target?: NatsTarget): Promise<string> {
    const key = target ? `bind\0${target.stream}/${target.subject}` : topic;
    let ready = this.#streams.get(key);
    if (!ready) {
      ready = target ? findStream(this.#jsm, topic, target) : this.#createStream(topic);
      this.#streams.set(key, ready);
      // A failure (server down, stream not made yet) is not cached: the next call tries again.
      ready.catch(() => this.#streams.delete(key));
    }
    return ready;
  }

  async #createStream(topic: string): Promise<string> {
    const mod = this.#mod;
    const options = this.options;
    const ns = this.#core.nanos;
    const config: Partial<StreamConfig> & { name: string } = {
      name: streamName(options, topic),
      subjects: [subjectOf(options, topic)],
      retention: options.retention === 'interest' ? mod.RetentionPolicy.Interest : mod.RetentionPolicy.Limits,
      storage: isEphemeral(topic) || options.storage === 'memory' ? mod.StorageType.Memory : mod.StorageType.File,
      max_age: ns(options.maxAgeMs),
      max_bytes: options.maxBytes,
      num_replicas: options.replicas,
      duplicate_window: ns(options.duplicateWindowMs),
      discard: mod.DiscardPolicy.Old,
    };
    try {
      await this.#jsm.streams.add(config);
    } catch (cause) {
      // Exists with another config (another version, another option set): update what may change.
      if (!isCode(cause, 10058)) throw transportError(`could not create stream ${config.name}`, cause);
      try {
        await this.#jsm.streams.update(config.name, config);
      } catch (err) {
        throw transportError(`stream ${config.name} exists with a config that cannot be updated`, err);
      }
    }
    return config.name;
  }

  async subscribe(topic: string, channel: string, options: SubscribeOptions, onMessage: (d: Delivery) => void): Promise<Subscription> {
    this.#open();
    checkName('topic', topic);
    checkSubject(topic);
    checkName('channel', channel);
    const maxInFlight = options.maxInFlight;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `maxInFlight must be a positive integer, got ${maxInFlight}`);
    }
    const ackWaitMs = options.timeoutMs ?? this.options.defaultAckWaitMs;
    if (!Number.isInteger(ackWaitMs) || ackWaitMs < 1) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `timeoutMs must be a positive integer, got ${options.timeoutMs}`);
    }
    const { target, consumer: bound } = sourceOf(this.options, topic, channel, options.bind);
    const stream = await this.#ensureStream(topic, target);
    // On a stream of theirs, several topics may share it: the durable is named by both.
    const name = bound ?? consumerName(target ? `${topic}:${channel}` : channel);
    if (bound) await checkConsumer(this.#jsm, stream, bound, `${topic}:${channel}`);
    // max_ack_pending bounds the whole channel: this process' subscribers of it share it.
    else await this.#ensureConsumer(stream, name, channel, ackWaitMs, this.#channelMax(topic, channel) + maxInFlight, target?.subject);
    const sub = new NatsSubscription(
      topic,
      channel,
      maxInFlight,
      {
        start: async (batch, onMsg) => {
          const consumer = await this.#js.consumers.get(stream, name);
          return consumer.consume({ max_messages: batch, callback: onMsg });
        },
        // A bound consumer is theirs: its limits stay as they configured them.
        updateMaxAckPending: async () => {
          if (!bound) await this.#updateConsumer(stream, name, { max_ack_pending: this.#channelMax(topic, channel) });
        },
        closed: async (s) => {
          if (bound) this.#subs.delete(s);
          else await this.#subClosed(s, stream, name);
        },
        onError: (err) => this.#onError(err),
      },
      onMessage,
    );
    sub.subjectHeader = target !== undefined;
    await sub.start();
    this.#subs.add(sub);
    return sub;
  }

  #ensureConsumer(stream: string, name: string, channel: string, ackWaitMs: number, maxAckPending: number, filter?: string): Promise<void> {
    const key = `${stream}\0${name}`;
    const previous = this.#consumers.get(key) ?? Promise.resolve();
    // Serialised per consumer: subscribers of one channel in one process do not race on create.
    const next = previous.catch(() => undefined).then(() => this.#createConsumer(stream, name, channel, ackWaitMs, maxAckPending, filter));
    this.#consumers.set(key, next);
    return next;
  }

  async #createConsumer(stream: string, name: string, channel: string, ackWaitMs: number, maxAckPending: number, filter?: string): Promise<void> {
    const mod = this.#mod;
    const ns = this.#core.nanos;
    const config: Partial<ConsumerConfig> = {
      ack_policy: mod.AckPolicy.Explicit,
      deliver_policy: mod.DeliverPolicy.New,
      ack_wait: ns(ackWaitMs),
      max_ack_pending: maxAckPending,
      max_deliver: -1,
      ...(filter === undefined ? {} : { filter_subject: filter }),
    };
    if (isEphemeral(channel)) {
      config.name = name;
      config.inactive_threshold = ns(this.options.ephemeralInactiveMs);
      config.mem_storage = true;
    } else {
      config.durable_name = name;
    }
    let info: Awaited<ReturnType<JetStreamManager['consumers']['info']>> | undefined;
    try {
      info = await this.#jsm.consumers.info(stream, name);
    } catch (cause) {
      if (!isCode(cause, 10014)) throw transportError(`could not look up consumer ${name} on ${stream}`, cause);
    }
    if (info) {
      if (info.config.ack_wait !== config.ack_wait || info.config.max_ack_pending !== maxAckPending) {
        await this.#updateConsumer(stream, name, { ack_wait: config.ack_wait, max_ack_pending: maxAckPending });
      }
      return;
    }
    try {
      await this.#jsm.consumers.add(stream, config);
    } catch (cause) {
      // Another process made it between our info and add: take theirs, with our limits.
      if (isCode(cause, 10148) || isCode(cause, 10013)) {
        await this.#updateConsumer(stream, name, { ack_wait: config.ack_wait, max_ack_pending: maxAckPending });
        return;
      }
      throw transportError(`could not create consumer ${name} on ${stream}`, cause);
    }
  }

  async #updateConsumer(stream: string, name: string, change: Partial<ConsumerConfig>): Promise<void> {
    try {
      await this.#jsm.consumers.update(stream, name, change);
    } catch (cause) {
      throw transportError(`could not update consumer ${name} on ${stream}`, cause);
    }
  }

  /** Sum of maxInFlight over this process' subscribers of a channel (its max_ack_pending). */
  #channelMax(topic: string, channel: string): number {
    let sum = 0;
    for (const s of this.#subs) if (s.topic === topic && s.channel === channel) sum += s.maxInFlight;
    return sum;
  }

  async #subClosed(sub: NatsSubscription, stream: string, name: string): Promise<void> {
    this.#subs.delete(sub);
    const remaining = this.#channelMax(sub.topic, sub.channel);
    if (remaining > 0) {
      if (!this.#closing) await this.#updateConsumer(stream, name, { max_ack_pending: remaining }).catch((err) => this.#onError(err));
      return;
    }
    if (!isEphemeral(sub.channel)) return;
    // Last local subscriber of an ephemeral channel: it goes now (the server would after inactive_threshold).
    this.#consumers.delete(`${stream}\0${name}`);
    await this.#jsm.consumers.delete(stream, name).catch(() => undefined);
  }

  #onError(err: unknown): void {
    if (errors.hasSubscribers) errors.publish({ error: err });
  }

  #open(): void {
    if (this.#closing) throw new ConveyorError('ERR_CLOSED', 'nats:// transport is closed');
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.allSettled([...this.#subs].map((s) => s.close()));
    await Promise.allSettled([...this.#pending]);
    try {
      await this.#nc.drain();
    } catch {
      await this.#nc.close().catch(() => undefined);
    }
  }
}

/** A subject token may not be empty: `a..b`, `.a`, `a.` are not NATS subjects. */
function checkSubject(topic: string): void {
  const base = isEphemeral(topic) ? topic.slice(0, -'#ephemeral'.length) : topic;
  if (base.startsWith('.') || base.endsWith('.') || base.includes('..')) {
    throw new ConveyorError('ERR_BAD_NAME', `topic ${JSON.stringify(topic)} is not a valid NATS subject (empty token)`, { details: { topic } });
  }
}

function transportError(what: string, cause: unknown): ConveyorError {
  return new ConveyorError('ERR_TRANSPORT', `nats:// ${what}: ${(cause as Error)?.message ?? cause}`, { cause });
}
