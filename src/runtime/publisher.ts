import type { OutgoingMessage } from '../core/message.ts';
import type { Transport } from '../core/transport.ts';

interface Pending {
  messages: OutgoingMessage[];
  resolves: Array<() => void>;
  rejects: Array<(error: unknown) => void>;
}

/**
 * Publishes made in the same tick to the same topic go out as one `transport.publish` call,
 * and every caller's promise settles with that call's confirm. The flush runs as a microtask,
 * so `Promise.all(values.map(publish))` is one batch while a lone `await publish()` waits no
 * longer than it would unbatched.
 */
export class Publisher {
  readonly #transport: () => Promise<Transport>;
  #pending = new Map<string, Pending>();
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(transport: () => Promise<Transport>) {
    this.#transport = transport;
  }

  publish(topic: string, message: OutgoingMessage): Promise<void> {
    let batch = this.#pending.get(topic);
    if (!batch) {
      batch = { messages: [], resolves: [], rejects: [] };
      this.#pending.set(topic, batch);
    }
    batch.messages.push(message);
    const promise = new Promise<void>((resolve, reject) => {
      batch.resolves.push(resolve);
      batch.rejects.push(reject);
    });
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
    return promise;
  }

  #flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [topic, batch] of pending) {
      const sent = this.#transport()
        .then((transport) => transport.publish(topic, batch.messages))
        .then(
          () => {
            for (const resolve of batch.resolves) resolve();
          },
          (error: unknown) => {
            for (const reject of batch.rejects) reject(error);
          },
        );
      this.#inFlight.add(sent);
      sent.finally(() => this.#inFlight.delete(sent));
    }
  }

  /** Resolves once every publish made so far has been confirmed or rejected. */
  async drain(): Promise<void> {
    while (this.#scheduled || this.#inFlight.size > 0) {
      if (this.#scheduled) await Promise.resolve();
      else await Promise.allSettled([...this.#inFlight]);
    }
  }
}
