import { ConveyorError } from '../core/errors.ts';
import type { OutgoingMessage } from '../core/message.ts';
import type { Transport } from '../core/transport.ts';
import { type PublishStatus, Spool } from './spool.ts';

interface Pending {
  messages: OutgoingMessage[];
  resolves: Array<(status: PublishStatus) => void>;
  rejects: Array<(error: unknown) => void>;
}

/**
 * Publishes made in the same tick to the same topic go out as one `transport.publish` call,
 * and every caller's promise settles with that call's confirm. The flush runs as a microtask,
 * so `Promise.all(values.map(publish))` is one batch while a lone `await publish()` waits no
 * longer than it would unbatched.
 *
 * Every send has a deadline (`timeoutMs`, connect included): a broker whose socket stalls
 * without closing would otherwise hold the caller until the transport's heartbeat gives up
 * (about 60 s on NSQ). Past it the caller gets a retryable ERR_TIMEOUT; the broker may still
 * confirm the late batch, so a retry can duplicate it (at-least-once, deduplicated on the id).
 *
 * With a spool attached (src/runtime/spool.ts), a send the broker could not confirm is spooled
 * instead of rejected, and while anything is spooled new sends go behind it; the status says which.
 */
export class Publisher {
  readonly #transport: () => Promise<Transport>;
  readonly #timeoutMs: number;
  #pending = new Map<string, Pending>();
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();
  #spool: Spool | undefined;

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  constructor(transport: () => Promise<Transport>, timeoutMs: number) {
    this.#transport = transport;
    this.#timeoutMs = timeoutMs;
  }

  /** Spools what the broker cannot confirm from now on. */
  attachSpool(spool: Spool): void {
    this.#spool = spool;
  }

  publish(topic: string, message: OutgoingMessage): Promise<PublishStatus> {
    let batch = this.#pending.get(topic);
    if (!batch) {
      batch = { messages: [], resolves: [], rejects: [] };
      this.#pending.set(topic, batch);
    }
    batch.messages.push(message);
    const promise = new Promise<PublishStatus>((resolve, reject) => {
      batch.resolves.push(resolve);
      batch.rejects.push(reject);
    });
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
    return promise;
  }

  /**
   * Sends `messages` to `topic` now, as one `transport.publish` call, under the deadline; it
   * counts for {@link drain} until it settles or times out.
   */
  send(topic: string, messages: OutgoingMessage[]): Promise<void> {
    return this.#track(this.sendUntracked(topic, messages));
  }

  /** One bounded `transport.publish`, not counted by drain (the spool's re-publishes). */
  sendUntracked(topic: string, messages: OutgoingMessage[]): Promise<void> {
    const sent = this.#transport().then((transport) => transport.publish(topic, messages));
    return withDeadline(sent, this.#timeoutMs, topic, messages.length);
  }

  /** Like send, but with a spool a send the broker cannot confirm ends 'spooled' instead of rejecting. */
  sendOrSpool(topic: string, messages: OutgoingMessage[]): Promise<PublishStatus> {
    const spool = this.#spool;
    if (!spool) return this.send(topic, messages).then(() => 'confirmed');
    // Behind what is already spooled, so that the backlog is never overtaken.
    if (spool.active) return this.#track(spool.append(topic, messages)).then(() => 'spooled');
    return this.#track(
      this.sendUntracked(topic, messages).then(
        () => 'confirmed' as const,
        (error: unknown) => {
          if (!Spool.shouldSpool(error)) throw error;
          return spool.append(topic, messages, error).then(() => 'spooled' as const);
        },
      ),
    );
  }

  #track<T>(work: Promise<T>): Promise<T> {
    const tracked = work.then(noop, noop);
    this.#inFlight.add(tracked);
    tracked.finally(() => this.#inFlight.delete(tracked));
    return work;
  }

  #flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [topic, batch] of pending) {
      this.sendOrSpool(topic, batch.messages).then(
        (status) => {
          for (const resolve of batch.resolves) resolve(status);
        },
        (error: unknown) => {
          for (const reject of batch.rejects) reject(error);
        },
      );
    }
  }

  /** Resolves once every publish made so far has been confirmed, rejected or timed out. */
  async drain(): Promise<void> {
    while (this.#scheduled || this.#inFlight.size > 0) {
      if (this.#scheduled) await Promise.resolve();
      else await Promise.allSettled([...this.#inFlight]);
    }
  }
}

function withDeadline(sent: Promise<void>, timeoutMs: number, topic: string, count: number): Promise<void> {
  if (timeoutMs === Number.POSITIVE_INFINITY) return sent;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new ConveyorError('ERR_TIMEOUT', `publish to ${topic} was not confirmed within ${timeoutMs} ms (publishTimeoutMs)`, {
          retryable: true,
          details: { topic, messages: count, timeoutMs },
        }),
      );
    }, timeoutMs);
    sent.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function noop(): void {}
