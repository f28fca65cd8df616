import type { DedupStore } from '../dedup-store.ts';
import type { Handler, Middleware, Work } from '../types.ts';

/**
 * Skips (acks) messages whose id was already processed successfully, and records ids after
 * success. At-least-once delivery plus this gives effectively-once processing within the
 * store's memory.
 *
 * A copy that arrives while the first is still being handled (a re-publish after a lost
 * confirm, a redelivery after a timeout) waits for that outcome instead of running beside it:
 * with concurrency > 1 both used to pass `has` before either reached `add`.
 */
export function dedup(store: DedupStore, onDuplicate?: (work: Work) => void): Middleware {
  return function dedupMiddleware(next: Handler): Handler {
    const running = new Map<string, Promise<void>>();
    return async function dedupHandler(work) {
      const id = work.delivery.id;
      for (let prior = running.get(id); prior; prior = running.get(id)) await prior;
      let release!: () => void;
      running.set(id, new Promise<void>((resolve) => (release = resolve)));
      try {
        if (await store.has(id)) {
          work.settled = true;
          work.delivery.ack();
          onDuplicate?.(work);
          return;
        }
        await next(work);
        await store.add(id);
      } finally {
        running.delete(id);
        release();
      }
    };
  };
}
