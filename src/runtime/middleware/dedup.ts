import type { DedupStore } from '../dedup-store.ts';
import type { Handler, Middleware, Work } from '../types.ts';

/**
 * Skips (acks) messages whose id was already processed successfully, and records ids after
 * success. At-least-once delivery plus this gives effectively-once processing within the
 * store's memory.
 */
export function dedup(store: DedupStore, onDuplicate?: (work: Work) => void): Middleware {
  return function dedupMiddleware(next: Handler): Handler {
    return async function dedupHandler(work) {
      const id = work.delivery.id;
      if (await store.has(id)) {
        work.settled = true;
        work.delivery.ack();
        onDuplicate?.(work);
        return;
      }
      await next(work);
      await store.add(id);
    };
  };
}
