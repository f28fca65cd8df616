import type { Delivery } from '../core/message.ts';
import type { MessageDefinition } from '../core/schema.ts';
import type { Context, PublishOptions, Work } from './types.ts';

export type PublishFn = <U>(definition: MessageDefinition<U>, value: U, options?: PublishOptions) => Promise<string>;

/**
 * The handler's context and the work item in one object, so a delivery costs one allocation.
 * The AbortController is made only when a handler asks for `signal`.
 */
export class WorkItem implements Work, Context {
  value: unknown = undefined;
  settled = false;
  timedOut = false;
  /** Set when the watchdog failed this work and freed its slot while the handler still ran. */
  detached = false;
  startedAt = 0;
  touchedAt = 0;
  watched = false;
  readonly delivery: Delivery;
  readonly publish: PublishFn;
  #controller: AbortController | undefined;

  constructor(delivery: Delivery, publish: PublishFn) {
    this.delivery = delivery;
    this.publish = publish;
  }

  get context(): Context {
    return this;
  }
  get id(): string {
    return this.delivery.id;
  }
  get topic(): string {
    return this.delivery.topic;
  }
  get channel(): string {
    return this.delivery.channel;
  }
  get headers() {
    return this.delivery.headers;
  }
  get attempts(): number {
    return this.delivery.attempts;
  }
  get timestamp(): number {
    return this.delivery.timestamp;
  }
  touch(): void {
    if (!this.settled) this.delivery.touch();
  }
  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }
  /** Aborts the handler's signal (deadline passed, or the app is force-closing). */
  abort(reason: unknown): void {
    this.#controller ??= new AbortController();
    this.#controller.abort(reason);
  }
}
