/**
 * `amqp://` / `amqps://` — RabbitMQ through amqplib.
 *
 * | Conveyor      | RabbitMQ                                                                 |
 * |---------------|--------------------------------------------------------------------------|
 * | topic         | durable fanout exchange `<prefix><topic>`                                |
 * | channel       | durable queue `<prefix><topic>:<channel>` bound to it (`#ephemeral`: exclusive, auto-delete) |
 * | confirm       | publisher confirms (one confirm channel, every message of a call awaited) |
 * | maxInFlight   | basic.qos prefetch on the subscription's own channel                      |
 * | ack           | basic.ack                                                                 |
 * | nack(delay)   | republish with attempts + 1 to a retry queue `<queue>.retry.<bucket>` whose TTL dead-letters back to the queue; the original is acked once the copy is confirmed |
 * | headers       | AMQP headers table; content-type as the content_type property (`?envelope=false`: none, the bare body) |
 *
 * Existing topologies (`bind.`, options.ts): `?bind.<topic>=<exchange>/<key>` publishes to an
 * exchange that exists (`/mailbox`: the default exchange, into queue `mailbox`) and declares
 * nothing; `?bind.<topic>:<channel>=<queue>` consumes a queue as is (passive declare).
 *
 * Reconnects are amqplib's own recovery (exponential backoff with jitter); `?queueType=quorum`
 * declares channel queues as quorum queues (options.ts).
 *
 * What RabbitMQ does not do, and what happens instead:
 * - No per-message in-flight timeout (its consumer_timeout is long and closes the channel):
 *   `timeoutRedelivery` and `touch` are false; unacked messages come back when the
 *   subscription's channel or connection closes.
 * - Attempts are not counted by classic queues: a `conveyor-attempts` header carries them,
 *   plus one when the broker redelivers (the redelivered flag).
 * - Delays are rounded up to a power-of-two bucket (see options.ts).
 * - A queue gets only messages published after it is bound (an exchange with no queue drops).
 */
import type { ConnectOptions, TransportFactory } from '../../core/transport.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { OutgoingMessage } from '../../core/message.ts';
import { loadOptional } from '../../core/optional.ts';
import { type SubscribeOptions, type Subscription, sendsBare, type Transport, type TransportFeatures } from '../../core/transport.ts';
import type { ParsedUrl } from '../../core/url.ts';
import { type AmqpOptions, type AmqpTarget, type AmqpQueueType, exchangeName, parseAmqpOptions } from './options.ts';
import { AmqpSubscription, ATTEMPTS, PUBLISHED_AT } from './subscription.ts';
import { amqpStats } from './stats.ts';
import type { StatsSelection } from '../../core/transport.ts';

type Amqplib = typeof import('amqplib');
type ChannelModel = import('amqplib').ChannelModel;
type ConfirmChannel = import('amqplib').ConfirmChannel;
/** What amqplib 2.x's `connect` returns with `recovery` (not in @types/amqplib 0.10). */
interface RecoveringModel {
  on(event: 'error' | 'disconnect', listener: (error: Error) => void): void;
  close(): Promise<void>;
}

export const createTransport: TransportFactory = (url, options) => AmqpTransport.connect(url, options);

export class AmqpTransport implements Transport {
  readonly kind = 'amqp';
  /** The engine's figures for Conveyor's queues (src/transports/amqp/stats.ts). */
  readonly stats = (select?: StatsSelection[]) => amqpStats(this.connection, this.options, select);
  readonly features: TransportFeatures;
  readonly options: AmqpOptions;
  readonly #amqp: Amqplib;
  readonly #clientName: string | undefined;
  #connection: ChannelModel | undefined;
  /** Resolves when the current connection is gone (closing a channel of a dead one never settles). */
  #gone: Promise<void> = Promise.resolve();
  #publisher: ConfirmChannel | undefined;
  #ready: Promise<void>;
  #markReady!: () => void;
  #closed = false;
  #recovering: RecoveringModel | undefined;
  readonly #exchanges = new Set<string>();
  /** Bound topics' existing exchanges (or default-exchange queues) seen to exist on this connection. */
  readonly #checked = new Set<string>();
  readonly #subs = new Set<AmqpSubscription>();
  readonly #pending = new Set<Promise<void>>();

  private constructor(amqp: Amqplib, options: AmqpOptions, clientName: string | undefined) {
    this.#amqp = amqp;
    this.options = options;
    this.#clientName = clientName;
    this.#ready = new Promise((resolve) => {
      this.#markReady = resolve;
    });
    this.features = {
      delayedNack: true,
      delayedPublish: false,
      timeoutRedelivery: false,
      touch: false,
      persistent: true,
      guaranteedOrder: true,
      attemptsCounted: false,
      maxMessageBytes: options.maxMessageBytes,
      bind: true,
    };
  }

  /** @example const t = await AmqpTransport.connect(parseTransportUrl('amqp://guest:guest@127.0.0.1:5672')); */
  static async connect(parsed: ParsedUrl, options: ConnectOptions = {}): Promise<AmqpTransport> {
    const amqp = await loadOptional<Amqplib>('amqplib', 'the amqp:// transport');
    const transport = new AmqpTransport(amqp, parseAmqpOptions(parsed), options.clientId);
    await transport.#start();
    return transport;
  }

  /** The live connection (tests use it to inspect or clean up). */
  get connection(): ChannelModel | undefined {
    return this.#connection;
  }

  /**
   * Reconnecting is amqplib's own recovery (2.x): exponential backoff from `reconnectMinMs` to
   * `reconnectMaxMs` with ±`reconnectJitter` spread, so that many clients cut at once do not
   * come back in lock-step. The first connect fails at once (`initialMaxRetries: 0`), as a bad
   * URL should; after that it retries forever. `setup` runs on every new connection, before
   * amqplib hands it out: a failure there closes it and schedules the next attempt.
   */
  async #start(): Promise<void> {
    const { reconnectMinMs, reconnectMaxMs, reconnectJitter } = this.options;
    const recovering = (await this.#amqp.connect(this.options.url, {
      clientProperties: { connection_name: this.#clientName ?? `conveyor-${process.pid}` },
      recovery: {
        initialDelay: reconnectMinMs,
        maxDelay: reconnectMaxMs,
        factor: 2,
        jitter: reconnectJitter,
        maxRetries: Number.POSITIVE_INFINITY,
        initialMaxRetries: 0,
        setup: (model: ChannelModel) => this.#setup(model),
      },
    } as Parameters<Amqplib['connect']>[1])) as unknown as RecoveringModel;
    recovering.on('error', () => {
      // 'disconnect' follows; amqplib reconnects.
    });
    recovering.on('disconnect', () => this.#lost());
    this.#recovering = recovering;
  }

  async #setup(model: ChannelModel): Promise<void> {
    if (this.#closed) return;
    model.on('error', () => {});
    const gone = new Promise<void>((resolve) => model.once('close', () => resolve()));
    const publisher = await model.createConfirmChannel();
    publisher.on('error', () => {});
    this.#exchanges.clear();
    this.#checked.clear();
    const declaring = declaringQueuesAs(model, this.options.queueType);
    for (const sub of this.#subs) await sub.restart(declaring);
    this.#gone = gone;
    this.#connection = model;
    this.#publisher = publisher;
    this.#markReady();
  }

  /** The connection died under us: publishes wait for amqplib to reconnect, subscriptions come back in #setup. */
  #lost(): void {
    if (this.#closed) return;
    this.#connection = undefined;
    this.#publisher = undefined;
    this.#ready = new Promise((resolve) => {
      this.#markReady = resolve;
    });
  }

  /** Waits (bounded) for a live connection. */
  async #live(): Promise<{ connection: ChannelModel; publisher: ConfirmChannel }> {
    if (this.#closed) throw new ConveyorError('ERR_CLOSED', 'amqp:// transport is closed');
    if (!this.#connection || !this.#publisher) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new ConveyorError('ERR_TRANSPORT', `amqp://: no connection to RabbitMQ for ${this.options.publishTimeoutMs} ms`)),
          this.options.publishTimeoutMs,
        );
      });
      try {
        await Promise.race([this.#ready, timeout]);
      } finally {
        clearTimeout(timer);
      }
    }
    return { connection: this.#connection!, publisher: this.#publisher! };
  }

  async #exchange(channel: import('amqplib').Channel, topic: string): Promise<string> {
    const name = exchangeName(this.options, topic);
    if (!this.#exchanges.has(name)) {
      await channel.assertExchange(name, 'fanout', { durable: !topic.endsWith('#ephemeral'), autoDelete: topic.endsWith('#ephemeral') });
      this.#exchanges.add(name);
    }
    return name;
  }

  publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    for (const m of messages) {
      if (m.body.length > this.options.maxMessageBytes) {
        return Promise.reject(
          new ConveyorError('ERR_TOO_LARGE', `amqp://: body of ${m.body.length} bytes exceeds maxMessageBytes ${this.options.maxMessageBytes}`),
        );
      }
      if (m.delayMs) return Promise.reject(new ConveyorError('ERR_BAD_OPTIONS', 'amqp:// cannot delay a publish (features.delayedPublish is false)'));
    }
    const sent = this.#publish(topic, messages);
    this.#pending.add(sent);
    return sent.finally(() => this.#pending.delete(sent));
  }

  async #publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    const { connection, publisher } = await this.#live();
    const bound = this.options.topics.get(topic);
    if (bound) {
      await this.checkTarget(connection, topic, bound);
      return this.publishTo(publisher, bound.exchange, bound.routingKey, messages, undefined, !this.options.envelope);
    }
    const exchange = await this.#exchange(publisher, topic).catch((cause: unknown) => {
      throw new ConveyorError('ERR_TRANSPORT', `amqp://: cannot declare exchange for ${topic}: ${(cause as Error).message}`, { cause });
    });
    await this.publishTo(publisher, exchange, '', messages, undefined, !this.options.envelope);
  }

  /**
   * A bound topic's exchange must exist — or, for the default exchange, the routing key's queue,
   * which would otherwise drop every message while confirming it. Checked passively, once per
   * connection, on a channel of its own: a failed passive declare closes the channel it ran on.
   */
  async checkTarget(connection: ChannelModel, topic: string, target: AmqpTarget): Promise<void> {
    const what = target.exchange === '' ? `queue ${JSON.stringify(target.routingKey)}` : `exchange ${JSON.stringify(target.exchange)}`;
    if (this.#checked.has(what)) return;
    const ch = await connection.createChannel();
    ch.on('error', () => {});
    try {
      if (target.exchange === '') await ch.checkQueue(target.routingKey);
      else await ch.checkExchange(target.exchange);
    } catch (cause) {
      throw new ConveyorError('ERR_NOT_FOUND', `amqp://: topic ${topic} is bound to ${what}, which does not exist: ${(cause as Error).message}`, {
        cause,
        details: { topic, ...target },
      });
    } finally {
      await ch.close().catch(() => undefined);
    }
    this.#checked.add(what);
  }

  /**
   * Publishes with confirms; resolves when the broker confirmed every message. Used for retries too.
   * `bare`: the body alone (`?envelope=false`), for consumers that know nothing of Conveyor.
   */
  publishTo(publisher: ConfirmChannel, exchange: string, routingKey: string, messages: OutgoingMessage[], attempts?: number[], bare = false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let left = messages.length;
      let failed = false;
      if (left === 0) return resolve();
      const now = Date.now();
      messages.forEach((m, i) => {
        const headers: Record<string, string | number> = { ...m.headers, [ATTEMPTS]: attempts?.[i] ?? 1 };
        if (!(PUBLISHED_AT in headers)) headers[PUBLISHED_AT] = String(now);
        const contentType = m.headers?.['content-type'];
        delete headers['content-type'];
        try {
          publisher.publish(
            exchange,
            routingKey,
            Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength),
            sendsBare(!bare, m) ? { persistent: true, timestamp: Math.floor(now / 1000) } : {
              persistent: true,
              ...(m.id ? { messageId: m.id } : {}),
              ...(contentType ? { contentType } : {}),
              timestamp: Math.floor(now / 1000),
              headers,
            },
            (err: unknown) => {
              if (failed) return;
              if (err) {
                failed = true;
                reject(new ConveyorError('ERR_NOT_CONFIRMED', `amqp://: RabbitMQ did not confirm a publish: ${String((err as Error)?.message ?? err)}`, { cause: err, retryable: true }));
              } else if (--left === 0) resolve();
            },
          );
        } catch (cause) {
          failed = true;
          reject(new ConveyorError('ERR_TRANSPORT', `amqp://: publish failed: ${(cause as Error).message}`, { cause, retryable: true }));
        }
      });
    });
  }

  async subscribe(topic: string, channel: string, options: SubscribeOptions, onMessage: Parameters<Transport['subscribe']>[3]): Promise<Subscription> {
    if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `amqp://: maxInFlight must be a positive integer, got ${options.maxInFlight}`);
    }
    const { connection } = await this.#live();
    const sub = new AmqpSubscription(this, topic, channel, options.maxInFlight, onMessage, (s) => this.#subs.delete(s), options.bind);
    await sub.restart(declaringQueuesAs(connection, this.options.queueType));
    this.#subs.add(sub);
    return sub;
  }

  /** Declares the topic's exchange on `channel` (subscriptions call it when they (re)bind). */
  declareExchange(channel: import('amqplib').Channel, topic: string): Promise<string> {
    return this.#exchange(channel, topic);
  }

  /** The confirm channel, waiting (bounded) for a reconnect if needed. */
  async confirmChannel(): Promise<ConfirmChannel> {
    return (await this.#live()).publisher;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // A connection that died just before close (its 'close' event not yet handled) leaves
    // amqplib's channel.close() and connection.close() pending forever: stop waiting when it goes.
    const gone = this.#gone;
    await Promise.race([Promise.allSettled([...this.#subs].map((s) => s.close())), gone]);
    await Promise.allSettled([...this.#pending]);
    this.#closed = true;
    const connection = this.#connection;
    this.#connection = undefined;
    // Stops recovery too: a close while reconnecting cancels the pending attempt.
    const closing = this.#recovering?.close().catch(() => undefined);
    if (connection) await Promise.race([closing, gone]);
    else await closing;
  }
}

/**
 * The connection a subscription declares its queue through. subscription.ts asserts durable
 * queues with `{ durable: true }`; for `?queueType=quorum` its channels add `x-queue-type` to
 * every durable, non-exclusive queue they assert (ephemeral queues are exclusive, which quorum
 * queues cannot be, so they stay classic). Everything else is the connection itself.
 */
function declaringQueuesAs(model: ChannelModel, queueType: AmqpQueueType): ChannelModel {
  if (queueType === 'classic') return model;
  const view = Object.create(model) as ChannelModel;
  view.createChannel = async () => {
    const ch = await model.createChannel();
    const assertQueue = ch.assertQueue.bind(ch);
    ch.assertQueue = (queue, options) =>
      assertQueue(queue, options?.durable === false || options?.exclusive ? options : { ...options, arguments: { 'x-queue-type': queueType, ...options?.arguments } });
    return ch;
  };
  return view;
}
