import type { Delivery } from '../core/message.ts';

/** What a consumer reports; listen with `app.on(name, listener)`. */
export interface MessageEvent {
  readonly delivery: Delivery;
}
export interface FailureEvent extends MessageEvent {
  readonly error: Error;
}
export interface AppEvents {
  /** A delivery was handled and acked. Only emitted while someone listens. */
  processed: [MessageEvent];
  /** A handler failed and the message was nacked for another try after `delayMs`. */
  retry: [FailureEvent & { delayMs: number }];
  /** A message was published to the dead-letter topic and acked. */
  dead: [FailureEvent & { deadTopic: string }];
  /** Out of attempts with dead-lettering off: acked and reported here. */
  discarded: [FailureEvent];
  /** A message whose id was already processed was skipped. */
  duplicate: [MessageEvent];
  /** Trouble outside a handler (subscription, dead-letter publish, shutdown). The app goes on. */
  warning: [{ error: Error; where: string }];
  /** With the `spool` option: messages the broker could not confirm were fsynced to the spool; `error` says why. */
  spooled: [{ topic: string; count: number; error: Error }];
  /** With the `spool` option: spooled messages reached the broker. */
  replayed: [{ topic: string; count: number }];
}
