import { ConveyorError } from '../../core/errors.ts';
import { NsqConnection } from './connection.ts';
import type { HostPort, NsqOptions } from './options.ts';
import { dpubCommand, mpubCommand, pubCommand } from './wire.ts';

interface Entry {
  bodies: Uint8Array[];
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Publishes over one connection to the first nsqd that answers. Publishes made in the same tick
 * to the same topic go out as one MPUB (split where a body would pass maxBodySize); commands are
 * pipelined and nsqd answers them in order. A lost connection is redialed by the next publish;
 * what was unanswered is rejected (retryable), never assumed delivered.
 */
export class NsqPublisher {
  #options: NsqOptions;
  #identify: Record<string, unknown>;
  /** Where to publish: a fixed list, or a function (nsqlookupd's node list). */
  #targets: () => Promise<HostPort[]>;
  #conn: NsqConnection | undefined;
  #connecting: Promise<NsqConnection> | undefined;
  #queued = new Map<string, Entry[]>();
  #scheduled = false;
  #pending = new Set<Promise<unknown>>();
  #maxBody: number;

  constructor(options: NsqOptions, identify: Record<string, unknown>, targets: () => Promise<HostPort[]>) {
    this.#options = options;
    this.#identify = identify;
    this.#targets = targets;
    this.#maxBody = options.maxBodySize;
  }

  /** Queues `bodies` (already enveloped and size-checked) for this tick's MPUB to `topic`. */
  publish(topic: string, bodies: Uint8Array[]): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      let list = this.#queued.get(topic);
      if (!list) this.#queued.set(topic, (list = []));
      list.push({ bodies, resolve, reject });
    });
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(flush, this);
    }
    return this.#track(done);
  }

  /** DPUB goes one message per command (nsqd has no multi-message deferred publish). */
  publishDeferred(topic: string, body: Uint8Array, delayMs: number): Promise<void> {
    return this.#track(this.#connection().then((c) => c.command(dpubCommand(topic, delayMs, body)).then(ok)));
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    const forget = () => this.#pending.delete(p);
    p.then(forget, forget);
    return p;
  }

  /** @internal */
  flush(): void {
    this.#scheduled = false;
    const queued = this.#queued;
    this.#queued = new Map();
    this.#connection().then(
      (conn) => {
        for (const [topic, entries] of queued) this.#send(conn, topic, entries);
      },
      (err: unknown) => {
        for (const entries of queued.values()) for (const e of entries) e.reject(err);
      },
    );
  }

  #send(conn: NsqConnection, topic: string, entries: Entry[]): void {
    if (entries.length === 1 && entries[0]!.bodies.length === 1) {
      const e = entries[0]!;
      conn.command(pubCommand(topic, e.bodies[0]!)).then(ok).then(e.resolve, e.reject);
      return;
    }
    // One flat list, cut into MPUBs whose body fits; each entry settles when its MPUBs did.
    const bodies: Uint8Array[] = [];
    const ends: number[] = [];
    for (const e of entries) {
      for (const b of e.bodies) bodies.push(b);
      ends.push(bodies.length);
    }
    const chunks: Array<{ from: number; to: number; done: Promise<void> }> = [];
    let from = 0;
    let size = 4;
    for (let i = 0; i <= bodies.length; i++) {
      const next = i < bodies.length ? 4 + bodies[i]!.length : 0;
      if (i === bodies.length || (i > from && size + next > this.#maxBody)) {
        const cmd = i - from === 1 ? pubCommand(topic, bodies[from]!) : mpubCommand(topic, bodies, from, i);
        chunks.push({ from, to: i, done: conn.command(cmd).then(ok) });
        from = i;
        size = 4;
      }
      size += next;
    }
    // Entries and chunks are both in order: walk them together.
    let c = 0;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      const end = ends[k]!;
      const mine: Promise<void>[] = [];
      for (let j = c; j < chunks.length && chunks[j]!.from < end; j++) mine.push(chunks[j]!.done);
      while (c < chunks.length && chunks[c]!.to <= end) c++;
      (mine.length === 1 ? mine[0]! : Promise.all(mine)).then(() => e.resolve(), e.reject);
    }
  }

  #connection(): Promise<NsqConnection> {
    if (this.#conn?.alive) return Promise.resolve(this.#conn);
    this.#connecting ??= this.#dial().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #dial(): Promise<NsqConnection> {
    const targets = await this.#targets();
    let last: unknown;
    for (const target of targets) {
      const conn = new NsqConnection(
        {
          ...target,
          identify: this.#identify,
          connectTimeoutMs: this.#options.connectTimeoutMs,
          heartbeatIntervalMs: this.#options.heartbeatIntervalMs,
          maxFrameBytes: 1 << 20,
          security: this.#options.security,
        },
        { onClose: () => undefined },
      );
      try {
        const identity = await conn.open();
        if (identity.max_body_size) this.#maxBody = Math.min(this.#maxBody, identity.max_body_size);
        this.#conn = conn;
        return conn;
      } catch (err) {
        last = err;
        conn.destroy();
      }
    }
    throw last instanceof ConveyorError
      ? last
      : new ConveyorError('ERR_TRANSPORT', 'nsq: no nsqd to publish to', { cause: last, details: { targets } });
  }

  /** Waits for every publish made so far to be answered, then hangs up. */
  async close(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    this.#conn?.destroy();
  }
}

function flush(p: NsqPublisher): void {
  p.flush();
}

function ok(answer: Buffer): void {
  if (answer.length !== 2 || answer[0] !== 0x4f || answer[1] !== 0x4b) {
    throw new ConveyorError('ERR_NOT_CONFIRMED', `nsq: publish answered ${answer.toString('utf8').slice(0, 100)} instead of OK`);
  }
}
