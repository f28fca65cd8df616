import { ConveyorError, isRetryable } from '../../core/errors.ts';
import { type BackoffOptions, backoffDelay } from '../backoff.ts';
import type { Handler, Middleware, Work } from '../types.ts';

export interface RetryOptions {
  /** Deliveries in all, the first included, before a message is given up on. @default 5 */
  attempts: number;
  backoff: BackoffOptions;
}

/**
 * Failed work is handed back to the broker with `nack(delay)`: the retry survives a crash of
 * this process and does not hold a concurrency slot while it waits. Errors that are not
 * retryable, and the last attempt, are rethrown for the dead-letter middleware inside.
 * `onRetry` reports each retry.
 */
export function retry(options: RetryOptions, onRetry?: (work: Work, error: unknown, delayMs: number) => void): Middleware {
  return function retryMiddleware(next: Handler): Handler {
    return async function retryHandler(work) {
      try {
        await next(work);
      } catch (error) {
        if (work.settled) return;
        const delayMs = backoffDelay(options.backoff, work.delivery.attempts);
        work.settled = true;
        work.delivery.nack(delayMs);
        onRetry?.(work, error, delayMs);
      }
    };
  };
}

/** Whether `work` has another try left after `error`. */
export function willRetry(options: RetryOptions, work: Work, error: unknown): boolean {
  return isRetryable(error) && work.delivery.attempts < options.attempts;
}

/** Normalises anything thrown into an Error with a message, for headers and events. */
export function asError(error: unknown): Error {
  if (error instanceof Error) return error;
  return new ConveyorError('ERR_HANDLER', `handler threw a non-error value: ${String(error)}`);
}
