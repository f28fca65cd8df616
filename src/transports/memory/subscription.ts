import { ConveyorError } from '../../core/errors.ts';
import type { Delivery } from '../../core/message.ts';
import type { Subscription } from '../../core/transport.ts';
import type { ChannelConsumer, ConsumerSink, EngineMessage } from '../../engine/types.ts';
import { type DeliveryOwner, MemoryDelivery } from './delivery.ts';

/**
 * A subscription is an engine consumer whose RDY is the subscription's max in flight: pause sets
 * RDY 0, resume restores it, and close leaves the channel (the engine requeues what was in flight).
 */
export class MemorySubscription implements Subscription, ConsumerSink, DeliveryOwner {
  readonly topic: string;
  readonly channel: string;
  consumer!: ChannelConsumer;
  #onMessage: (delivery: Delivery) => void;
  #maxInFlight: number;
  #maxRdy: number;
  #paused = false;
  #closed = false;
  #warned = false;
  #onClose: (sub: MemorySubscription) => void;

  constructor(
    topic: string,
    channel: string,
    maxInFlight: number,
    maxRdy: number,
    onMessage: (delivery: Delivery) => void,
    onClose: (sub: MemorySubscription) => void,
  ) {
    this.topic = topic;
    this.channel = channel;
    this.#maxInFlight = maxInFlight;
    this.#maxRdy = maxRdy;
    this.#onMessage = onMessage;
    this.#onClose = onClose;
  }

  /** Engine → subscription, synchronously for each message. */
  deliver(message: EngineMessage): void {
    try {
      this.#onMessage(new MemoryDelivery(this, message));
    } catch (err) {
      // onMessage must not throw. If it does, the message stays in flight and the engine's timeout
      // redelivers it; the engine's loop must not be broken by one handler.
      if (!this.#warned) {
        this.#warned = true;
        process.emitWarning(
          `memory:// onMessage threw for ${this.topic}/${this.channel}; the message will be redelivered after its timeout: ${String(err)}`,
          'ConveyorWarning',
        );
      }
    }
  }

  /** The engine deleted the channel (or closed): nothing more will come. */
  detached(): void {
    this.#finish();
  }

  pause(): void {
    if (this.#closed) return;
    this.#paused = true;
    this.consumer.setReady(0);
  }

  resume(): void {
    if (this.#closed) return;
    this.#paused = false;
    this.consumer.setReady(this.#maxInFlight);
  }

  setMaxInFlight(n: number): void {
    checkMaxInFlight(n, this.#maxRdy);
    this.#maxInFlight = n;
    if (!this.#closed && !this.#paused) this.consumer.setReady(n);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.consumer.close();
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose(this);
  }
}

export function checkMaxInFlight(n: unknown, maxRdy: number): asserts n is number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > maxRdy) {
    throw new ConveyorError(
      'ERR_BAD_OPTIONS',
      `maxInFlight must be an integer from 0 to ${maxRdy} (the engine's maxRdyCount), got ${JSON.stringify(n)}`,
    );
  }
}
