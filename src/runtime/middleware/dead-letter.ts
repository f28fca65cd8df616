import { errorCode } from '../../core/errors.ts';
import { HEADER, type Headers, type OutgoingMessage } from '../../core/message.ts';
import type { Handler, Middleware, Work } from '../types.ts';
import { asError, type RetryOptions, willRetry } from './retry.ts';

export interface DeadLetterOptions {
  /** Where dead messages go. @default `<topic>.dead` */
  topic?: (topic: string) => string;
  /** Publishes to the dead-letter topic and resolves on the broker's confirm. */
  publish: (topic: string, message: OutgoingMessage) => Promise<void>;
  retry: RetryOptions;
  /** Called once the dead message is confirmed on the dead-letter topic. */
  onDead?: (work: Work, error: Error, deadTopic: string) => void;
}

/** The dead-letter headers: why, from where, after how many attempts. */
export function deadHeaders(work: Work, error: Error): Headers {
  const d = work.delivery;
  return {
    ...d.headers,
    [HEADER.id]: d.id,
    [HEADER.deadCode]: errorCode(error),
    // Header values travel as single lines on some engines.
    [HEADER.deadReason]: error.message.replace(/[\r\n]+/g, ' ').slice(0, 1024),
    [HEADER.deadTopic]: d.topic,
    [HEADER.deadChannel]: d.channel,
    [HEADER.deadAttempts]: String(d.attempts),
    [HEADER.deadAt]: new Date().toISOString(),
  };
}

/**
 * Poison messages (not retryable, or out of attempts) are published — original body and
 * headers, plus the reason — to the dead-letter topic, and acked only once that publish is
 * confirmed. If the dead-letter publish fails, the error goes on to the retry middleware, so
 * the message is nacked and comes back: it is never dropped.
 */
export function deadLetter(options: DeadLetterOptions): Middleware {
  const deadTopicOf = options.topic ?? ((topic: string) => `${topic}.dead`);
  return function deadLetterMiddleware(next: Handler): Handler {
    return async function deadLetterHandler(work) {
      try {
        await next(work);
      } catch (thrown) {
        if (work.settled || willRetry(options.retry, work, thrown)) throw thrown;
        const error = asError(thrown);
        const deadTopic = deadTopicOf(work.delivery.topic);
        await options.publish(deadTopic, { id: work.delivery.id, body: work.delivery.body, headers: deadHeaders(work, error) });
        work.settled = true;
        work.delivery.ack();
        options.onDead?.(work, error, deadTopic);
      }
    };
  };
}

/**
 * Without a dead-letter topic (`deadLetter: false`), a message out of attempts is acked and
 * reported through `onDiscard` — nsqjs's 'discard' — so it is never dropped unseen.
 */
export function discard(options: { retry: RetryOptions; onDiscard: (work: Work, error: Error) => void }): Middleware {
  return function discardMiddleware(next: Handler): Handler {
    return async function discardHandler(work) {
      try {
        await next(work);
      } catch (thrown) {
        if (work.settled || willRetry(options.retry, work, thrown)) throw thrown;
        work.settled = true;
        work.delivery.ack();
        options.onDiscard(work, asError(thrown));
      }
    };
  };
}
