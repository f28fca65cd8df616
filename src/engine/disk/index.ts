/**
 * The disk backend of the embedded engine: one {@link DiskQueue} per topic and per channel in a
 * data directory, chosen with `conveyor broker --data-dir DIR` or `embedded:///DIR`.
 *
 * Two modes:
 * - default (nsqd's): memory first, disk past the memory high-water mark; a publish is confirmed
 *   once its disk part is written to the kernel (no fsync); segment and metadata are fsynced
 *   every `checkpointMs`. A killed broker loses what was only in memory; a crashed machine may
 *   also lose up to `checkpointMs` of disk writes. Writes newer than the last checkpoint are
 *   recovered by scanning the write segment.
 * - durable: run the engine with memQueueSize 0 so every message goes through disk; the engine
 *   awaits `sync()` (flush + fsync, one per batch of concurrent publishes) before a publish is
 *   confirmed, so a kill -9 loses no confirmed message; what was unread or in flight comes back.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import type { BackendFactory } from '../types.ts';
import { type CorruptionReport, DiskQueue } from './disk-queue.ts';

export { type CorruptionReport, DiskMessage, DiskQueue, type DiskQueueOptions } from './disk-queue.ts';

export interface DiskBackendOptions {
  dir: string;
  /** Every message on disk and fsynced before its publish is confirmed (use memQueueSize 0). @default false */
  durable?: boolean;
  /** Segment size, bytes. @default 104857600 */
  maxBytesPerFile?: number;
  /** Largest message, bytes (corruption check on read). @default 1048576 */
  maxMsgSize?: number;
  /** How often metadata is saved in the default mode, ms. @default 1000 */
  checkpointMs?: number;
  /** Corrupt segments found while reading. @default logged to stderr */
  onCorrupt?: (report: CorruptionReport) => void;
}

const SEP = ':';

/**
 * @example
 * const engine = new Engine({ backend: diskBackend({ dir: '/var/lib/conveyor' }) });
 * restoreTopology(engine, '/var/lib/conveyor');
 */
export function diskBackend(options: DiskBackendOptions): BackendFactory {
  mkdirSync(options.dir, { recursive: true });
  const queues = new Set<DiskQueue>();
  const onCorrupt =
    options.onCorrupt ??
    ((r: CorruptionReport) => process.stderr.write(`conveyor: corrupt disk queue ${r.queue}: ${r.reason} at ${r.file}:${r.offset}; kept as .bad, reading on\n`));
  if (!options.durable) {
    const timer = setInterval(() => {
      for (const q of queues) q.checkpoint();
    }, options.checkpointMs ?? 1000);
    timer.unref();
  }
  return (topic, channel) => {
    const q = new DiskQueue({
      dir: options.dir,
      name: channel === undefined ? topic : `${topic}${SEP}${channel}`,
      maxBytesPerFile: options.maxBytesPerFile ?? 100 * 1024 * 1024,
      maxMsgSize: options.maxMsgSize ?? 1024 * 1024,
      durable: options.durable === true,
      onCorrupt,
    });
    queues.add(q);
    const close = q.close.bind(q);
    const del = q.delete.bind(q);
    q.close = () => {
      queues.delete(q);
      return close();
    };
    q.delete = () => {
      queues.delete(q);
      return del();
    };
    return q;
  };
}

/**
 * Re-creates the topics and channels a data directory holds, so channels that existed before a
 * restart get their messages again (nsqd keeps the same in nsqd.dat). Topics are paused while
 * their channels are added, so a topic's unpumped backlog reaches every channel, not the first.
 * (Paused state is not persisted: restored topics run.)
 */
/** The part of an engine restoring needs (the Engine, or the server's view of one). */
export interface RestorableEngine {
  topic(name: string): { pause(): void; unpause(): void; channel(name: string): unknown };
}

export function restoreTopology(engine: RestorableEngine, dir: string): { topics: string[]; channels: string[] } {
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.diskqueue.meta.json'))
    .map((f) => f.slice(0, -'.diskqueue.meta.json'.length));
  const topics = [...new Set(names.map((n) => n.split(SEP)[0]!))];
  const channels = names.filter((n) => n.includes(SEP));
  for (const name of topics) {
    const topic = engine.topic(name);
    topic.pause();
    for (const c of channels) if (c.startsWith(`${name}${SEP}`)) topic.channel(c.slice(name.length + 1));
    topic.unpause();
  }
  return { topics, channels };
}
