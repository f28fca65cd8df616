import { ConveyorError } from '../../core/errors.ts';
import type { Handler, Middleware } from '../types.ts';
import type { Watched, Watchdog } from '../watchdog.ts';

/**
 * Puts each handler under the consumer's watchdog: touched while it runs long; past the hard
 * deadline the watchdog fails it (abort signal, retryable ERR_TIMEOUT) and frees its slot. A
 * handler cannot be cancelled: if it finishes after its deadline, its result does not count.
 */
export function timeout(watchdog: Watchdog): Middleware {
  return function timeoutMiddleware(next: Handler): Handler {
    return async function timeoutHandler(work) {
      watchdog.enter(work as Watched);
      try {
        await next(work);
      } finally {
        watchdog.leave(work as Watched);
      }
      if (work.timedOut) throw new ConveyorError('ERR_TIMEOUT', 'handler finished after its deadline');
    };
  };
}
