import type { Headers } from '../core/message.ts';
import type { Delivery } from '../core/message.ts';
import type { MessageDefinition } from '../core/schema.ts';

/** What a handler gets besides the typed value. */
export interface Context {
  readonly id: string;
  readonly topic: string;
  readonly channel: string;
  readonly headers: Readonly<Headers>;
  /** 1 on first delivery. */
  readonly attempts: number;
  /** When the broker accepted the message, ms since the epoch. */
  readonly timestamp: number;
  /** Restart the broker's in-flight timeout (the runtime also does this for slow handlers). */
  touch(): void;
  /** Publish a follow-up message through the app (batched, resolves on confirm). */
  publish<U>(definition: MessageDefinition<U>, value: U, options?: PublishOptions): Promise<string>;
  /** Aborted when the handler runs past its hard deadline or the app is force-closed. */
  readonly signal: AbortSignal;
}

export type MessageHandler<T> = (value: T, context: Context) => unknown;

export interface PublishOptions {
  /** Extra headers (application-defined). */
  headers?: Headers;
  /** Deliver no earlier than this many ms from now (engines with delayed publish). */
  delayMs?: number;
  /** The logical id; a fresh one by default. Set it to make a republish dedupable. */
  id?: string;
}

/**
 * One delivery on its way through the middleware chain. Middleware read and settle it;
 * whatever is not settled when the chain resolves is acked.
 */
export interface Work {
  readonly delivery: Delivery;
  /** The typed value, once decoded. */
  value: unknown;
  /** True once acked, nacked or dead-lettered: later settles are ignored. */
  settled: boolean;
  /** Set by the timeout middleware when the handler ran past its hard deadline. */
  timedOut: boolean;
  readonly context: Context;
}

/** The innermost step and every middleware's output: resolves when the work is processed. */
export type Handler = (work: Work) => Promise<void>;
/** Middleware wraps the next handler: `(next) => handler`. */
export type Middleware = (next: Handler) => Handler;
