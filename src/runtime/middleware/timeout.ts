import type { Handler, Middleware } from '../types.ts';
import type { Watchdog } from '../watchdog.ts';

/**
 * Puts each handler under the consumer's watchdog: touched while it runs long, failed with a
 * retryable ERR_TIMEOUT (and its AbortSignal aborted) past the hard deadline. The handler's
 * promise cannot be cancelled; the signal asks it to stop, and its late result is ignored.
 */
export function timeout(watchdog: Watchdog): Middleware {
  return function timeoutMiddleware(next: Handler): Handler {
    return function timeoutHandler(work) {
      return new Promise<void>((resolve, reject) => {
        const entry = watchdog.enter(work, (error) => {
          (work.context as { abort?: (reason: unknown) => void }).abort?.(error);
          reject(error);
        });
        next(work).then(
          () => {
            watchdog.leave(entry);
            resolve();
          },
          (error: unknown) => {
            watchdog.leave(entry);
            reject(error);
          },
        );
      });
    };
  };
}
