/**
 * The producer spool: publishes the broker could not confirm, kept in order in a local
 * append-only file (the engine's disk queue, src/engine/disk) and re-published when the broker
 * is back. DESIGN.md: "a producer that cannot reach its broker spools to local disk and says
 * so; it never pretends a spooled message was confirmed".
 *
 * - A message is "spooled" once it is fsynced (the disk queue in durable mode), never before.
 * - Order: while anything is spooled, new publishes are appended behind it instead of sent, so
 *   a re-published backlog is never overtaken by fresh messages.
 * - At least once: a publish that timed out may still have reached the broker, and a kill -9
 *   before the cursor's next checkpoint sends the batches re-published since then again. Consumers
 *   dedup on the message id (HEADER.id), which the spool keeps.
 * - One process per spool directory (a lock file with the pid; a dead owner's lock is taken over).
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConveyorError, isConveyorError, isRetryable } from '../core/errors.ts';
import type { OutgoingMessage } from '../core/message.ts';
import { DiskMessage, DiskQueue } from '../engine/disk/disk-queue.ts';

export interface SpoolOptions {
  /** Directory of the spool files; created if missing. One producer process per directory. */
  dir: string;
  /**
   * Largest size of what is spooled (bodies, headers and record framing), bytes; a publish that
   * would pass it rejects with ERR_BACKPRESSURE. @default 268435456 (256 MiB)
   */
  maxBytes?: number;
  /** Messages re-published per broker call while draining. @default 500 */
  batchSize?: number;
  /** Wait between re-publish attempts while the broker is still down, ms (doubled up to 5000). @default 250 */
  retryMs?: number;
}

/** How a publish ended when a spool is configured. */
export type PublishStatus = 'confirmed' | 'spooled';

export const DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024;
const NAME = 'spool';
const RECORD_OVERHEAD = 8 + 8 + 2 + 16 + 8 + 2 + 4;
const MAX_RETRY_MS = 5000;

type Send = (topic: string, messages: OutgoingMessage[]) => Promise<void>;

export interface SpoolEvents {
  /** A publish the broker could not confirm was spooled. */
  spooled(topic: string, count: number, cause: unknown): void;
  /** Spooled messages reached the broker. */
  replayed(topic: string, count: number): void;
  /** A spooled batch the broker refused for good (its bytes or topic); kept in spool.rejected.jsonl. */
  rejected(topic: string, count: number, error: unknown): void;
  /** Re-publishing fails for a reason retrying alone will not fix (URL, TLS, AUTH): kept, retried, said once per reason. */
  stuck(topic: string, error: unknown): void;
}

/**
 * Refusals of the message itself (size, name, bytes), which no broker state will change. Other
 * permanent failures (a bad URL, TLS or AUTH refused) are the producer's configuration: the spool
 * keeps the messages and keeps trying, since a fixed configuration will deliver them.
 */
const MESSAGE_FAULTS = new Set(['ERR_TOO_LARGE', 'ERR_BAD_NAME', 'ERR_ENCODE', 'ERR_SCHEMA']);
const NSQ_MESSAGE_FAULTS = new Set(['E_BAD_MESSAGE', 'E_BAD_BODY', 'E_BAD_TOPIC']);

function isMessageFault(error: unknown): boolean {
  if (!isConveyorError(error) || error.retryable) return false;
  return MESSAGE_FAULTS.has(error.code) || NSQ_MESSAGE_FAULTS.has(String(error.details?.nsqCode));
}

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly #queue: DiskQueue;
  readonly #send: Send;
  readonly #events: SpoolEvents;
  readonly #batchSize: number;
  readonly #retryMs: number;
  readonly #lockPath: string;
  #bytes: number;
  /** Read from the queue, being re-published, not yet released. */
  #inHand: DiskMessage[] = [];
  /** Read past the end of the last batch (another topic): the first of the next one. */
  #held: DiskMessage | undefined;
  #replaying: Promise<void> | undefined;
  #closed = false;
  /** The last reason re-publishing could not go on, so that it is said once, not every retry. */
  #stuckOn: string | undefined;
  #wake: (() => void) | undefined;
  #appends: Promise<void> = Promise.resolve();

  constructor(options: SpoolOptions, send: Send, events: SpoolEvents) {
    const maxBytes = options.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES;
    if (typeof options.dir !== 'string' || options.dir === '') {
      throw new ConveyorError('ERR_BAD_OPTIONS', 'app: spool.dir must be a directory path');
    }
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `app: spool.maxBytes must be a positive integer, got ${String(options.maxBytes)}`);
    }
    this.dir = options.dir;
    this.maxBytes = maxBytes;
    this.#send = send;
    this.#events = events;
    this.#batchSize = options.batchSize ?? 500;
    this.#retryMs = options.retryMs ?? 250;
    mkdirSync(this.dir, { recursive: true });
    this.#lockPath = join(resolve(this.dir), `${NAME}.lock`);
    takeLock(this.#lockPath);
    this.#queue = new DiskQueue({
      dir: this.dir,
      name: NAME,
      // Segments are deleted once fully re-published, so small ones give disk space back sooner.
      maxBytesPerFile: Math.max(1 << 20, Math.min(16 << 20, Math.floor(maxBytes / 4))),
      maxMsgSize: 64 * 1024 * 1024,
      durable: true,
    });
    // What a previous process left: the segments on disk (over-counts at most the part of the
    // first segment already re-published; exact again once the spool drains).
    this.#bytes = this.#queue.depth === 0 ? 0 : segmentBytes(this.dir);
    if (this.#queue.depth > 0) this.#kick();
  }

  /** Messages waiting to be re-published. */
  get depth(): number {
    return this.#queue.depth + this.#inHand.length + (this.#held === undefined ? 0 : 1);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Anything spooled: new publishes must queue behind it to keep the order. */
  get active(): boolean {
    return this.depth > 0;
  }

  /** Whether a failed send is worth spooling (the broker may take it later) or the caller's to handle. */
  static shouldSpool(error: unknown): boolean {
    return isRetryable(error);
  }

  /**
   * Appends `messages` for `topic` and fsyncs them; resolves once they are on disk. Rejects with
   * ERR_BACKPRESSURE, spooling none of them, when they do not fit in maxBytes.
   */
  append(topic: string, messages: OutgoingMessage[], cause?: unknown): Promise<void> {
    // One append at a time, so a batch's records stay together and the byte check holds.
    const run = this.#appends.then(() => this.#append(topic, messages, cause));
    this.#appends = run.catch(() => undefined);
    return run;
  }

  async #append(topic: string, messages: OutgoingMessage[], cause: unknown): Promise<void> {
    if (this.#closed) throw new ConveyorError('ERR_CLOSED', 'spool is closed');
    const now = Date.now();
    const records = messages.map((m) => {
      const key = JSON.stringify([topic, m.id ?? null]);
      const headers = m.headers === undefined ? undefined : m.headers;
      const deferUntil = m.delayMs === undefined || m.delayMs <= 0 ? 0 : now + m.delayMs;
      const msg = new DiskMessage('spooled00000000', m.body, headers, key, now, 0, deferUntil, 0, 0);
      const size = RECORD_OVERHEAD + key.length + m.body.length + (headers ? JSON.stringify(headers).length : 0);
      return { msg, size };
    });
    const size = records.reduce((n, r) => n + r.size, 0);
    if (this.#bytes + size > this.maxBytes) {
      throw new ConveyorError('ERR_BACKPRESSURE', `spool ${this.dir} is full: ${this.#bytes} + ${size} bytes > maxBytes ${this.maxBytes}`, {
        cause,
        details: { dir: this.dir, bytes: this.#bytes, needed: size, maxBytes: this.maxBytes, topic, messages: messages.length },
      });
    }
    for (const r of records) this.#queue.put(r.msg);
    this.#bytes += size;
    await this.#queue.sync();
    this.#events.spooled(topic, messages.length, cause);
    this.#kick();
  }

  /** Starts the re-publish loop if it is not running. */
  #kick(): void {
    if (this.#closed) return;
    if (this.#wake) {
      this.#wake();
      return;
    }
    this.#replaying ??= this.#replay().finally(() => {
      this.#replaying = undefined;
      if (!this.#closed && this.depth > 0) this.#kick();
    });
  }

  async #replay(): Promise<void> {
    let delay = this.#retryMs;
    while (!this.#closed) {
      if (this.#inHand.length === 0) this.#take();
      if (this.#inHand.length === 0) return;
      const batch = this.#inHand;
      const topic = topicOf(batch[0]!);
      try {
        await this.#send(topic, batch.map(toOutgoing));
      } catch (error) {
        if (!isMessageFault(error)) {
          if (!Spool.shouldSpool(error)) {
            const why = error instanceof Error ? error.message : String(error);
            if (why !== this.#stuckOn) this.#events.stuck(topic, error);
            this.#stuckOn = why;
          }
          await this.#sleep(delay);
          delay = Math.min(delay * 2, MAX_RETRY_MS);
          continue;
        }
        this.#keepRejected(topic, batch, error);
        this.#events.rejected(topic, batch.length, error);
      }
      delay = this.#retryMs;
      this.#stuckOn = undefined;
      for (const m of batch) this.#queue.release(m);
      this.#inHand = [];
      // The cursor is saved off the event loop, not awaited: a crash before it lands re-publishes
      // those batches again (duplicates, deduplicated on the id), never loses one. Awaiting an
      // fsync per batch made draining a quarter of the confirmed publish rate.
      this.#queue.checkpoint();
      if (this.depth === 0) this.#bytes = 0;
      else this.#bytes = Math.max(0, this.#bytes - batch.reduce((n, m) => n + recordSize(m), 0));
      this.#events.replayed(topic, batch.length);
    }
  }

  /** The next run of messages for one topic, in spool order. */
  #take(): void {
    let topic: string | undefined;
    while (this.#inHand.length < this.#batchSize) {
      const next = this.#held ?? (this.#queue.read() as DiskMessage | undefined);
      this.#held = undefined;
      if (next === undefined) return;
      const t = topicOf(next);
      // A topic change ends the batch; the message waits as the start of the next one.
      if (topic !== undefined && t !== topic) {
        this.#held = next;
        return;
      }
      topic = t;
      this.#inHand.push(next);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    }).finally(() => {
      this.#wake = undefined;
    });
  }

  #keepRejected(topic: string, batch: DiskMessage[], error: unknown): void {
    const fd = openSync(join(this.dir, `${NAME}.rejected.jsonl`), 'a');
    try {
      for (const m of batch) {
        const why = error instanceof Error ? error.message : String(error);
        writeSync(fd, `${JSON.stringify({ topic, id: toOutgoing(m).id, headers: m.headers, body: Buffer.from(m.body).toString('base64'), error: why })}\n`);
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Resolves once the spool is empty, or after `timeoutMs` (false: something is still spooled). */
  async drained(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    await this.#appends;
    while (this.active && Date.now() < until) {
      this.#kick();
      await new Promise((r) => setTimeout(r, 20));
    }
    return !this.active;
  }

  /** Stops re-publishing; what is still spooled stays on disk for the next start. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#appends;
    this.#closed = true;
    this.#wake?.();
    await this.#replaying;
    await this.#queue.close();
    rmSync(this.#lockPath, { force: true });
    HELD.delete(this.#lockPath);
  }
}

function toOutgoing(m: DiskMessage): OutgoingMessage {
  const [, id] = JSON.parse(m.key!) as [string, string | null];
  const out: OutgoingMessage = { body: m.body };
  if (id !== null) out.id = id;
  if (m.headers !== undefined) out.headers = m.headers;
  if (m.deferUntil > 0) {
    const delay = m.deferUntil - Date.now();
    if (delay > 0) out.delayMs = delay;
  }
  return out;
}

function topicOf(m: DiskMessage): string {
  return (JSON.parse(m.key!) as [string])[0];
}

function recordSize(m: DiskMessage): number {
  return RECORD_OVERHEAD + (m.key?.length ?? 0) + m.body.length + (m.headers ? JSON.stringify(m.headers).length : 0);
}

function segmentBytes(dir: string): number {
  let total = 0;
  for (const f of readdirSync(dir)) {
    if (f.startsWith(`${NAME}.diskqueue.`) && f.endsWith('.dat')) total += statSync(join(dir, f)).size;
  }
  return total;
}

/** Spool locks this process holds: a second app on the same directory is refused, not taken over. */
const HELD = new Set<string>();

/** Exclusive per directory: two producers appending to one queue would corrupt it. */
function takeLock(path: string): void {
  if (HELD.has(path)) throw new ConveyorError('ERR_BAD_OPTIONS', `spool ${path} is in use by another app in this process`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      HELD.add(path);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(readFileSync(path, 'utf8'));
      if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new ConveyorError('ERR_BAD_OPTIONS', `spool ${path} is in use by process ${owner}`);
      }
      // The owner died (kill -9): take it over.
      rmSync(path, { force: true });
    }
  }
  throw new ConveyorError('ERR_BAD_OPTIONS', `spool lock ${path} could not be taken`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
