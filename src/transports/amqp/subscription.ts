import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, Headers } from '../../core/message.ts';
import type { Binding, Subscription } from '../../core/transport.ts';
import { subscriptionSource } from './bind.ts';
import type { AmqpTransport } from './index.ts';
import { type AmqpSource, delayBucket, retryQueueName } from './options.ts';

type Channel = import('amqplib').Channel;
type ChannelModel = import('amqplib').ChannelModel;
type ConsumeMessage = import('amqplib').ConsumeMessage;

/** Transport-internal headers, never shown to handlers. */
export const ATTEMPTS = 'conveyor-attempts';
export const PUBLISHED_AT = 'conveyor-published-at';

class AmqpDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly channel: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly attempts: number;
  readonly timestamp: number;
  readonly #sub: AmqpSubscription;
  readonly #message: ConsumeMessage;
  readonly #generation: number;
  #settled = false;

  constructor(sub: AmqpSubscription, message: ConsumeMessage, generation: number) {
    this.#sub = sub;
    this.#message = message;
    this.#generation = generation;
    this.topic = sub.topic;
    this.channel = sub.channel;
    this.body = message.content;
    const props = message.properties;
    const raw = (props.headers ?? {}) as Record<string, unknown>;
    const headers: Headers = {};
    for (const [k, v] of Object.entries(raw)) {
      if (k === ATTEMPTS || k === PUBLISHED_AT || v === undefined || v === null) continue;
      headers[k] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
    }
    if (props.contentType) headers['content-type'] = props.contentType;
    this.headers = headers;
    const counted = Number(raw[ATTEMPTS] ?? 1) || 1;
    this.attempts = counted + (message.fields.redelivered ? 1 : 0);
    this.timestamp = Number(raw[PUBLISHED_AT]) || (props.timestamp ? Number(props.timestamp) * 1000 : Date.now());
    this.id = props.messageId ?? headers['conveyor-id'] ?? `${sub.queue}/${message.fields.deliveryTag}`;
  }

  ack(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#sub.settle(this.#message, this.#generation, 'ack');
  }

  nack(delayMs = 0): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#sub.retry(this, this.#message, this.#generation, delayMs);
  }

  touch(): void {
    // RabbitMQ has no in-flight timeout to restart (features.touch is false).
  }
}

/**
 * One consumer on a channel's queue, on an AMQP channel of its own (prefetch is per channel).
 * After a reconnect it declares, binds and consumes again; deliveries from the dead channel
 * are settled as no-ops, since the broker already requeued them.
 */
export class AmqpSubscription implements Subscription {
  readonly topic: string;
  readonly channel: string;
  readonly queue: string;
  readonly #source: AmqpSource;
  readonly #transport: AmqpTransport;
  readonly #onMessage: (d: Delivery) => void;
  readonly #onClose: (s: AmqpSubscription) => void;
  #maxInFlight: number;
  #amqpChannel: Channel | undefined;
  #consumerTag: string | undefined;
  #generation = 0;
  #paused = false;
  #closed = false;
  readonly #retryQueues = new Set<string>();

  constructor(
    transport: AmqpTransport,
    topic: string,
    channel: string,
    maxInFlight: number,
    onMessage: (d: Delivery) => void,
    onClose: (s: AmqpSubscription) => void,
    bind?: Binding,
  ) {
    this.#transport = transport;
    this.topic = topic;
    this.channel = channel;
    this.#source = subscriptionSource(transport.options, topic, channel, bind);
    this.queue = this.#source.queue;
    this.#maxInFlight = maxInFlight;
    this.#onMessage = onMessage;
    this.#onClose = onClose;
  }

  get #ephemeral(): boolean {
    return this.channel.endsWith('#ephemeral') || this.topic.endsWith('#ephemeral');
  }

  /** (Re)creates the AMQP channel, queue, binding and consumer on `connection`. */
  async restart(connection: ChannelModel): Promise<void> {
    if (this.#closed) return;
    const ch = await connection.createChannel();
    ch.on('error', () => {});
    const source = this.#source;
    if (!source.declare) {
      // Consumed as is: a passive declare, so whatever durability and arguments it has are fine.
      await ch.checkQueue(source.queue).catch((cause: unknown) => {
        throw new ConveyorError('ERR_NOT_FOUND', `amqp://: ${this.topic}:${this.channel} is bound to queue ${JSON.stringify(source.queue)}, which does not exist: ${(cause as Error).message}`, {
          cause,
          details: { topic: this.topic, channel: this.channel, queue: source.queue },
        });
      });
    } else {
      let exchange: string;
      let routingKey = '';
      if (source.exchange) {
        await this.#transport.checkTarget(connection, this.topic, source.exchange);
        ({ exchange, routingKey } = source.exchange);
      } else {
        exchange = await this.#transport.declareExchange(ch, this.topic);
      }
      const ephemeral = this.#ephemeral;
      await ch.assertQueue(this.queue, ephemeral ? { exclusive: true, autoDelete: true, durable: false } : { durable: true });
      await ch.bindQueue(this.queue, exchange, routingKey);
    }
    await ch.prefetch(this.#maxInFlight);
    this.#generation++;
    this.#amqpChannel = ch;
    this.#consumerTag = undefined; // the old channel's consumer died with it
    this.#retryQueues.clear();
    if (!this.#paused) await this.#consume();
  }

  async #consume(): Promise<void> {
    const ch = this.#amqpChannel;
    if (!ch || this.#consumerTag) return;
    const generation = this.#generation;
    const reply = await ch.consume(this.queue, (message) => {
      if (message) this.#onMessage(new AmqpDelivery(this, message, generation));
    });
    this.#consumerTag = reply.consumerTag;
  }

  settle(message: ConsumeMessage, generation: number, how: 'ack' | 'requeue'): void {
    const ch = this.#amqpChannel;
    if (!ch || generation !== this.#generation) return; // the broker requeued it with the old channel
    try {
      if (how === 'ack') ch.ack(message);
      else ch.nack(message, false, true);
    } catch {
      // Channel closing under us: the broker requeues.
    }
  }

  /**
   * nack: republish a copy with attempts + 1 (to the queue itself for no delay, else to the
   * delay bucket's retry queue, which dead-letters back to the queue), then ack the original.
   * If the copy is not confirmed, the original is requeued instead: never lost.
   */
  retry(delivery: AmqpDelivery, message: ConsumeMessage, generation: number, delayMs: number): void {
    const run = async () => {
      const publisher = await this.#transport.confirmChannel();
      let target = this.queue;
      if (delayMs > 0) {
        const bucket = delayBucket(delayMs);
        target = retryQueueName(this.queue, bucket);
        if (!this.#retryQueues.has(target)) {
          await publisher.assertQueue(target, {
            durable: !this.#ephemeral,
            arguments: {
              'x-message-ttl': bucket,
              'x-dead-letter-exchange': '',
              'x-dead-letter-routing-key': this.queue,
              'x-expires': this.#transport.options.retryQueueExpiresMs + bucket,
            },
          });
          this.#retryQueues.add(target);
        }
      }
      const headers = { ...delivery.headers, [PUBLISHED_AT]: String(delivery.timestamp) };
      await this.#transport.publishTo(publisher, '', target, [{ id: delivery.id, body: delivery.body, headers }], [delivery.attempts + 1]);
      this.settle(message, generation, 'ack');
    };
    run().catch(() => this.settle(message, generation, 'requeue'));
  }

  pause(): void {
    this.#paused = true;
    const ch = this.#amqpChannel;
    const tag = this.#consumerTag;
    this.#consumerTag = undefined;
    if (ch && tag) ch.cancel(tag).catch(() => undefined);
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#consume().catch(() => undefined);
  }

  setMaxInFlight(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new ConveyorError('ERR_BAD_OPTIONS', `amqp://: maxInFlight must be a positive integer, got ${n}`);
    this.#maxInFlight = n;
    // basic.qos applies to consumers started after it: restart the consumer to apply it now.
    const ch = this.#amqpChannel;
    if (!ch) return;
    ch.prefetch(n)
      .then(async () => {
        if (this.#paused || !this.#consumerTag) return;
        const tag = this.#consumerTag;
        this.#consumerTag = undefined;
        await ch.cancel(tag);
        await this.#consume();
      })
      .catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose(this);
    const ch = this.#amqpChannel;
    this.#amqpChannel = undefined;
    // Closing the channel hands every unacked delivery back to the queue.
    await ch?.close().catch(() => undefined);
  }
}
