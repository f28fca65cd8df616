import { hasEnvelope, openWithId } from '../../core/envelope.ts';
import type { Delivery, Headers } from '../../core/message.ts';
import type { ChannelConsumer, EngineMessage } from '../../engine/types.ts';

const NO_HEADERS: Readonly<Headers> = Object.freeze({});

/** What a delivery needs from its subscription: names and the engine consumer to settle with. */
export interface DeliveryOwner {
  readonly topic: string;
  readonly channel: string;
  readonly consumer: ChannelConsumer;
}

/**
 * One delivery of an engine message. A class (one shape, methods on the prototype), so a delivery
 * costs one small object and no closures. Settling is once: a second ack/nack is ignored, as the
 * Delivery contract says, and touch after settling does nothing.
 */
export class MemoryDelivery implements Delivery {
  readonly id: string;
  readonly body: Uint8Array;
  readonly headers: Readonly<Headers>;
  readonly attempts: number;
  readonly timestamp: number;
  #owner: DeliveryOwner;
  #engineId: string;
  #settled = false;

  constructor(owner: DeliveryOwner, message: EngineMessage) {
    this.#owner = owner;
    this.#engineId = message.id;
    this.attempts = message.attempts;
    this.timestamp = message.timestamp;
    if (message.headers !== undefined) {
      this.id = message.key ?? message.id;
      this.body = message.body;
      this.headers = message.headers;
    } else if (hasEnvelope(message.body)) {
      // Published over NSQ TCP by Conveyor's nsq client: the headers travel inside the body, the
      // logical id among them (what `conveyor pub` printed), as the nsq:// transport reads it.
      const opened = openWithId(message.body);
      this.id = opened.id ?? message.key ?? message.id;
      this.body = opened.body;
      this.headers = opened.headers;
    } else {
      this.id = message.key ?? message.id;
      this.body = message.body;
      this.headers = NO_HEADERS;
    }
  }

  get topic(): string {
    return this.#owner.topic;
  }

  get channel(): string {
    return this.#owner.channel;
  }

  ack(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#owner.consumer.finish(this.#engineId);
  }

  nack(delayMs = 0): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#owner.consumer.requeue(this.#engineId, delayMs);
  }

  touch(): void {
    if (this.#settled) return;
    this.#owner.consumer.touch(this.#engineId);
  }
}
