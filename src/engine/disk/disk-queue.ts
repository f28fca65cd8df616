/**
 * An append-only queue on disk for one topic or channel (nsqd's go-diskqueue): segment files
 * `<name>.diskqueue.<000000>.dat` rotated at `maxBytesPerFile`, and a small metadata file with
 * the read and write positions. Calls are synchronous on open file descriptors, buffered: puts
 * collect in a write buffer flushed in one write; reads take a chunk at a time.
 *
 * Durability: the persisted read position is the start of the oldest message read but not yet
 * released (FIN) — so what was unread or in flight at a crash is delivered again (at least
 * once). `sync()` flushes, fsyncs the segment and rewrites the metadata; `checkpoint()` does the
 * same without anyone waiting, on libuv's thread pool: an fsync takes as long as the kernel needs
 * to write out everything dirty (a journal commit on ext4), and on the event loop it stalled
 * every publish and delivery behind it (docs/decisions.md). Both run one after another.
 *
 * Record layout (all big-endian):
 *   u32 length of what follows | u32 crc32 of the payload | payload
 *   payload = f64 timestamp ms | u16 attempts | 16 B id | f64 deferUntil | u16 keyLen | key |
 *             u32 headersLen | headers JSON | body
 * A length past the limit, a short read or a crc mismatch marks the rest of that segment
 * corrupt: it is renamed `.bad`, reported, and reading goes on with the next segment.
 */
import {
  closeSync,
  existsSync,
  fsync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rm,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Headers } from '../../core/message.ts';
import { bytesView, Msg } from '../message.ts';
import type { BackendQueue, EngineMessage } from '../types.ts';
import { crc32 } from './crc32.ts';

export interface DiskQueueOptions {
  dir: string;
  /** File-safe name of the topic or channel. */
  name: string;
  /** Rotate segments past this size, bytes. @default 104857600 (100 MiB, as nsqd) */
  maxBytesPerFile: number;
  /** Largest payload accepted when reading back; larger lengths are corruption. */
  maxMsgSize: number;
  /**
   * Whether `sync()` means on disk (fsync) or only handed to the kernel (nsqd's default: a
   * killed broker loses nothing written, a crashed machine may lose what the kernel held).
   * @default true
   */
  durable?: boolean;
  /** Called with what was found corrupt (segment, offset, reason). */
  onCorrupt?: (report: CorruptionReport) => void;
}

export interface CorruptionReport {
  queue: string;
  file: string;
  offset: number;
  reason: string;
}

interface Meta {
  depth: number;
  readFile: number;
  readPos: number;
  writeFile: number;
  writePos: number;
}

/**
 * What `read()` returns: an engine message that also knows where it sits, so `release` can move
 * the cursor. A Msg itself, so the channel takes it as it is instead of copying it into one.
 */
export class DiskMessage extends Msg {
  released = false;
  readonly file: number;
  readonly pos: number;
  constructor(
    id: string,
    body: Uint8Array,
    headers: Headers | undefined,
    key: string | undefined,
    timestamp: number,
    attempts: number,
    deferUntil: number,
    file: number,
    pos: number,
  ) {
    super(id, body, headers, key, timestamp, attempts, deferUntil);
    this.file = file;
    this.pos = pos;
  }
}

const HEADER_BYTES = 8;
const FIXED_PAYLOAD = 8 + 2 + 16 + 8 + 2 + 4;
/**
 * 128 KiB: read by the kernel, then parsed while still in this core's cache (L2 is 512 KiB a core
 * here). 1 MiB chunks were parsed out of L3/RAM: nsq's bench_reader on a disk backlog,
 * same hour, three or four runs each: 1 MiB 283–325k msg/s, 256 KiB 325–350k, 128 KiB 344–361k,
 * 64 KiB 339–355k.
 */
const READ_CHUNK = 1 << 17;
const WRITE_FLUSH = 1 << 16;
/** Room for the records of one flush plus the one that crosses WRITE_FLUSH (when small). */
const WRITE_BUFFER = WRITE_FLUSH + 8192;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class DiskQueue implements BackendQueue {
  readonly #o: DiskQueueOptions;
  #meta: Meta;
  /** Where the next read starts (ahead of meta.readPos, which waits for releases). */
  #nextFile: number;
  #nextPos: number;
  #depth: number;
  #writeFd: number | undefined;
  /** Records not yet written to the segment: #wbuf[0, #wlen), fields stored through #wview. */
  #wbuf = Buffer.allocUnsafe(WRITE_BUFFER);
  #wview = new DataView(this.#wbuf.buffer, this.#wbuf.byteOffset, WRITE_BUFFER);
  #wlen = 0;
  #readFd: number | undefined;
  #readFdFile = -1;
  #chunk = Buffer.alloc(0);
  /** The chunk's fields are read through this: DataView's getters compile to loads, Buffer's readers check their arguments. */
  #view = new DataView(new ArrayBuffer(0));
  #chunkFile = -1;
  #chunkStart = 0;
  #sealed = { file: -1, end: 0 };
  /**
   * Where this process started writing. Records before it were on disk when the queue opened and
   * are checked against their crc32 when read; records after it are bytes this process wrote,
   * read back through the page cache, and are not (the check was a tenth of the read path's time;
   * nsqd checks none).
   */
  #ownFile: number;
  #ownPos: number;
  /** Read but not yet released, in read order (= position order). */
  readonly #outstanding: DiskMessage[] = [];
  #outHead = 0;
  /** Persistence ops (fsync + metadata), run one at a time in order; close() waits for them. */
  #chain: Promise<void> = Promise.resolve();
  /** The next group commit, queued but not started: sync() callers until it starts share it. */
  #nextSync: Promise<void> | undefined;
  #checkpointing = false;
  #closed = false;

  constructor(options: DiskQueueOptions) {
    this.#o = options;
    this.#meta = this.#loadMeta();
    this.#nextFile = this.#meta.readFile;
    this.#nextPos = this.#meta.readPos;
    this.#depth = this.#meta.depth;
    this.#checkWriteEnd();
    this.#ownFile = this.#meta.writeFile;
    this.#ownPos = this.#meta.writePos;
  }

  #file(n: number): string {
    return join(this.#o.dir, `${this.#o.name}.diskqueue.${String(n).padStart(6, '0')}.dat`);
  }
  get #metaPath(): string {
    return join(this.#o.dir, `${this.#o.name}.diskqueue.meta.json`);
  }

  #loadMeta(): Meta {
    const fresh: Meta = { depth: 0, readFile: 0, readPos: 0, writeFile: 0, writePos: 0 };
    if (!existsSync(this.#metaPath)) return fresh;
    try {
      const m = JSON.parse(readFileSync(this.#metaPath, 'utf8')) as Meta;
      for (const k of ['depth', 'readFile', 'readPos', 'writeFile', 'writePos'] as const) {
        if (!Number.isSafeInteger(m[k]) || m[k] < 0) throw new Error(`bad ${k}`);
      }
      return m;
    } catch (cause) {
      this.#report(this.#metaPath, 0, `unreadable metadata (${(cause as Error).message}): starting from the oldest segment`);
      return this.#recoverMeta();
    }
  }

  /** Metadata lost: keep every segment there is, read from the oldest, count as we go. */
  #recoverMeta(): Meta {
    let first = -1;
    let last = -1;
    for (let n = 0; n < 1_000_000 && (first === -1 || existsSync(this.#file(n)) || n <= last + 1); n++) {
      if (existsSync(this.#file(n))) {
        if (first === -1) first = n;
        last = n;
      } else if (first !== -1) break;
    }
    if (first === -1) return { depth: 0, readFile: 0, readPos: 0, writeFile: 0, writePos: 0 };
    const m = { depth: 0, readFile: first, readPos: 0, writeFile: last, writePos: statSync(this.#file(last)).size };
    // Count what is readable, so depth is right; corrupt tails are dealt with when read.
    m.depth = this.#countRecords(m);
    return m;
  }

  #countRecords(m: Meta): number {
    let count = 0;
    for (let f = m.readFile; f <= m.writeFile; f++) {
      if (!existsSync(this.#file(f))) continue;
      const data = readFileSync(this.#file(f));
      let pos = f === m.readFile ? m.readPos : 0;
      while (pos + HEADER_BYTES <= data.length) {
        const len = data.readUInt32BE(pos);
        if (len < FIXED_PAYLOAD || pos + HEADER_BYTES + len > data.length) break;
        pos += HEADER_BYTES + len;
        count++;
      }
    }
    return count;
  }

  /**
   * A crash can leave the write segment longer than the metadata says: trust the file, up to whole
   * records. A torn record at the end is cut off (and reported), so that new writes land right
   * after the last good record instead of behind bytes that would read as corruption.
   */
  #checkWriteEnd(): void {
    const path = this.#file(this.#meta.writeFile);
    if (!existsSync(path)) return;
    const size = statSync(path).size;
    if (size <= this.#meta.writePos) return;
    const data = readFileSync(path);
    let pos = this.#meta.writePos;
    while (pos + HEADER_BYTES <= size) {
      const len = data.readUInt32BE(pos);
      if (len < FIXED_PAYLOAD || pos + HEADER_BYTES + len > size) break;
      if (crc32(data.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + len)) !== data.readUInt32BE(pos + 4)) break;
      pos += HEADER_BYTES + len;
      this.#depth++;
    }
    this.#meta.writePos = pos;
    if (pos < size) {
      this.#report(path, pos, `torn write: ${size - pos} bytes after the last whole record cut off`);
      truncateSync(path, pos);
    }
  }

  get depth(): number {
    return this.#depth;
  }

  put(message: EngineMessage): void {
    if (this.#closed) throw new Error(`disk queue ${this.#o.name} is closed`);
    const key = message.key === undefined ? undefined : encoder.encode(message.key);
    const headers = message.headers === undefined ? undefined : encoder.encode(JSON.stringify(message.headers));
    const body = message.body;
    const payloadLen = FIXED_PAYLOAD + (key?.length ?? 0) + (headers?.length ?? 0) + body.length;
    const recLen = HEADER_BYTES + payloadLen;
    if (this.#meta.writePos > 0 && this.#meta.writePos + recLen > this.#o.maxBytesPerFile) this.#rotate();
    if (this.#wlen + recLen > this.#wbuf.length) {
      this.#flush();
      if (recLen > this.#wbuf.length) this.#growWriteBuffer(recLen);
    }
    this.#encodeRecord(this.#wlen, payloadLen, message, key, headers, body);
    this.#wlen += recLen;
    this.#meta.writePos += recLen;
    this.#depth++;
    if (this.#wlen >= WRITE_FLUSH) this.#flush();
  }

  /**
   * Writes one record at `at` in the write buffer, in place. A Buffer per record, Buffer's checked
   * writers, a latin1 write of the id and the concat at flush were half of a put under nsq's
   * bench_writer (docs/decisions.md, "The broker against nsqd: profiles").
   */
  #encodeRecord(
    at: number,
    payloadLen: number,
    message: EngineMessage,
    key: Uint8Array | undefined,
    headers: Uint8Array | undefined,
    body: Uint8Array,
  ): void {
    const buf = this.#wbuf;
    const view = this.#wview;
    view.setUint32(at, payloadLen);
    const p = at + HEADER_BYTES;
    view.setFloat64(p, message.timestamp);
    view.setUint16(p + 8, Math.min(message.attempts, 0xffff));
    // The id as latin1, space-padded or cut to 16 bytes (what Buffer#write 'latin1' stored).
    const id = message.id;
    const n = Math.min(id.length, 16);
    for (let i = 0; i < n; i++) buf[p + 10 + i] = id.charCodeAt(i);
    for (let i = n; i < 16; i++) buf[p + 10 + i] = 32;
    view.setFloat64(p + 26, message.deferUntil ?? 0);
    view.setUint16(p + 34, key?.length ?? 0);
    let o = p + 36;
    if (key) {
      buf.set(key, o);
      o += key.length;
    }
    view.setUint32(o, headers?.length ?? 0);
    o += 4;
    if (headers) {
      buf.set(headers, o);
      o += headers.length;
    }
    buf.set(body, o);
    view.setUint32(at + 4, crc32(new Uint8Array(buf.buffer, buf.byteOffset + p, payloadLen)));
  }

  /** Room for a record larger than the write buffer (flushed, so empty, when called). */
  #growWriteBuffer(size: number): void {
    this.#wbuf = Buffer.allocUnsafe(size);
    this.#wview = new DataView(this.#wbuf.buffer, this.#wbuf.byteOffset, size);
  }

  #rotate(): void {
    this.#flush();
    const old = this.#writeFd;
    if (old !== undefined) {
      if (this.#o.durable === false) {
        // Nobody waits for an fsync in this mode, and on the event loop this one stalled every
        // publish and delivery (7% of bench_writer's run at a rotation every ~0.6 s). Queued, it
        // still completes before any later checkpoint writes metadata that points past it.
        const path = this.#file(this.#meta.writeFile);
        this.#then(() => this.#fsyncAndClose(old)).catch((cause: unknown) =>
          this.#report(path, 0, `segment fsync failed: ${(cause as Error).message}`),
        );
      } else {
        // Synchronously: what a queued sync() promised may sit in this segment only. Cheap, as
        // commits keep little of it dirty. Closed later: a running op may be fsyncing it.
        fsyncSync(old);
        this.#then(() => closeSync(old));
      }
      this.#writeFd = undefined;
    }
    this.#meta.writeFile++;
    this.#meta.writePos = 0;
  }

  #fsyncAndClose(fd: number): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      fsync(fd, (err) => {
        closeSync(fd);
        if (err) reject(err);
        else resolve();
      }),
    );
  }

  /** Writes the buffer out (one write call); no fsync. */
  #flush(): void {
    if (this.#wlen === 0) return;
    this.#writeFd ??= openSync(this.#file(this.#meta.writeFile), 'a');
    // writeSync may write less than asked (a signal, a full disk): what is confirmed must all land.
    let done = 0;
    while (done < this.#wlen) done += writeSync(this.#writeFd, this.#wbuf, done, this.#wlen - done);
    this.#wlen = 0;
    if (this.#wbuf.length > WRITE_BUFFER) this.#growWriteBuffer(WRITE_BUFFER);
  }

  read(): EngineMessage | undefined {
    while (this.#depth > 0) {
      if (this.#nextFile === this.#meta.writeFile) this.#flush();
      const rec = this.#readRecord();
      if (rec === 'next') continue;
      if (rec === undefined) return undefined;
      this.#depth--;
      this.#outstanding.push(rec);
      return rec;
    }
    return undefined;
  }

  /** The record at the read position; 'next' after moving to the next segment or skipping corruption. */
  #readRecord(): DiskMessage | 'next' | undefined {
    const file = this.#nextFile;
    const pos = this.#nextPos;
    const fileEnd = file === this.#meta.writeFile ? this.#meta.writePos : this.#sealedEnd(file);
    if (pos >= fileEnd) {
      if (file >= this.#meta.writeFile) {
        // Depth says more, the files say no: trust the files.
        this.#depth = 0;
        return undefined;
      }
      this.#nextFile++;
      this.#nextPos = 0;
      return 'next';
    }
    // Fields are read straight from the read chunk: no views per record but the one crc32
    // needs (per-record allocations were most of the cost of reading from disk).
    let off = this.#load(file, pos, HEADER_BYTES, fileEnd);
    const len = off < 0 ? -1 : this.#view.getUint32(off);
    if (len < FIXED_PAYLOAD || len > this.#o.maxMsgSize + FIXED_PAYLOAD + 65_536 + 1_048_576 || pos + HEADER_BYTES + len > fileEnd) {
      return this.#corrupt(file, pos, len < 0 ? 'truncated record header' : `impossible record length ${len}`);
    }
    off = this.#load(file, pos, HEADER_BYTES + len, fileEnd);
    if (off < 0) return this.#corrupt(file, pos, 'truncated record');
    const chunk = this.#chunk;
    const view = this.#view;
    const p = off + HEADER_BYTES;
    const inherited = file < this.#ownFile || (file === this.#ownFile && pos < this.#ownPos);
    if (inherited && crc32(chunk.subarray(p, p + len)) !== view.getUint32(off + 4)) return this.#corrupt(file, pos, 'checksum mismatch');
    this.#nextPos = pos + HEADER_BYTES + len;
    const keyLen = view.getUint16(p + 34);
    let at = p + 36;
    const key = keyLen ? decoder.decode(chunk.subarray(at, at + keyLen)) : undefined;
    at += keyLen;
    const hLen = view.getUint32(at);
    at += 4;
    const headers = hLen ? (JSON.parse(decoder.decode(chunk.subarray(at, at + hLen))) as Headers) : undefined;
    at += hLen;
    // From char codes: Buffer#toString is a call into C++ per message.
    const i = p + 10;
    const id = String.fromCharCode(
      chunk[i]!, chunk[i + 1]!, chunk[i + 2]!, chunk[i + 3]!, chunk[i + 4]!, chunk[i + 5]!, chunk[i + 6]!, chunk[i + 7]!,
      chunk[i + 8]!, chunk[i + 9]!, chunk[i + 10]!, chunk[i + 11]!, chunk[i + 12]!, chunk[i + 13]!, chunk[i + 14]!, chunk[i + 15]!,
    );
    return new DiskMessage(
      id.charCodeAt(15) === 32 ? id.trimEnd() : id,
      // A view into the read chunk, not a copy (copying was an eighth of the consume path's time).
      // It keeps the chunk alive while the message lives: in flight that is bounded by RDY, and a
      // message that waits longer (deferred) takes a copy (Msg.ownBody).
      bytesView(chunk, at, p + len),
      headers,
      key,
      view.getFloat64(p),
      view.getUint16(p + 8),
      view.getFloat64(p + 26),
      file,
      pos,
    );
  }

  /** The size of a segment no longer written to, looked up once (per record it was a third of the read time). */
  #sealedEnd(file: number): number {
    if (this.#sealed.file !== file) {
      const path = this.#file(file);
      this.#sealed = { file, end: existsSync(path) ? statSync(path).size : 0 };
    }
    return this.#sealed.end;
  }

  /**
   * Reads through a chunk cache of up to READ_CHUNK (one syscall per chunk, not per message): makes the
   * chunk hold [pos, pos + length) and returns where pos is in it, or -1 when the file is shorter.
   * A chunk is never larger than what the file holds past `pos`, since bodies are views into it.
   */
  #load(file: number, pos: number, length: number, fileEnd: number): number {
    if (file !== this.#chunkFile || pos < this.#chunkStart || pos + length > this.#chunkStart + this.#chunk.length) {
      if (this.#readFdFile !== file) {
        if (this.#readFd !== undefined) closeSync(this.#readFd);
        const path = this.#file(file);
        if (!existsSync(path)) return -1;
        this.#readFd = openSync(path, 'r');
        this.#readFdFile = file;
      }
      const size = Math.max(length, Math.min(READ_CHUNK, fileEnd - pos));
      const buf = Buffer.allocUnsafe(size);
      const n = readSync(this.#readFd!, buf, 0, size, pos);
      this.#chunk = buf.subarray(0, n);
      this.#view = new DataView(buf.buffer, buf.byteOffset, n);
      this.#chunkFile = file;
      this.#chunkStart = pos;
    }
    const from = pos - this.#chunkStart;
    return this.#chunk.length - from >= length ? from : -1;
  }


  /** Rest of this segment is unreadable: report, keep the bytes as `.bad`, go on with the next. */
  #corrupt(file: number, pos: number, reason: string): 'next' | undefined {
    const path = this.#file(file);
    this.#report(path, pos, reason);
    const skipped = this.#countAfter(file);
    if (file === this.#meta.writeFile) {
      // The write segment: cut the bad tail so new writes land after good records.
      this.#flush();
      const old = this.#writeFd;
      // Closed after any running persist op, which may be fsyncing it.
      if (old !== undefined) this.#then(() => closeSync(old));
      this.#writeFd = undefined;
      this.#meta.writeFile++;
      this.#meta.writePos = 0;
    }
    if (this.#readFd !== undefined && this.#readFdFile === file) {
      closeSync(this.#readFd);
      this.#readFd = undefined;
      this.#readFdFile = -1;
    }
    this.#chunkFile = -1;
    try {
      renameSync(path, `${path}.bad`);
    } catch {
      // Already gone: nothing to keep.
    }
    this.#depth = Math.max(0, this.#depth - skipped);
    this.#nextFile = file + 1;
    this.#nextPos = 0;
    return this.#depth > 0 ? 'next' : undefined;
  }

  /** How many of the counted messages the rest of `file` held (so depth stays right after a skip). */
  #countAfter(file: number): number {
    let later = 0;
    const m = { depth: 0, readFile: file + 1, readPos: 0, writeFile: this.#meta.writeFile, writePos: this.#meta.writePos };
    if (file < this.#meta.writeFile) later = this.#countRecords(m);
    return Math.max(0, this.#depth - later);
  }

  #report(file: string, offset: number, reason: string): void {
    this.#o.onCorrupt?.({ queue: this.#o.name, file, offset, reason });
  }

  release(message: EngineMessage): void {
    if (!(message instanceof DiskMessage) || message.released) return;
    message.released = true;
    const out = this.#outstanding;
    const head = this.#outHead;
    while (this.#outHead < out.length && out[this.#outHead]!.released) this.#outHead++;
    // Released behind the oldest unreleased one: the persisted position stays where it is.
    if (this.#outHead === head) return;
    if (this.#outHead > 1024 && this.#outHead * 2 > out.length) {
      out.splice(0, this.#outHead);
      this.#outHead = 0;
    }
    this.#advanceCursor();
  }

  /** The persisted read position: the oldest unreleased message, or the next read. */
  #advanceCursor(): void {
    const oldest = this.#outstanding[this.#outHead];
    const file = oldest === undefined ? this.#nextFile : oldest.file;
    const pos = oldest === undefined ? this.#nextPos : oldest.pos;
    if (file > this.#meta.readFile) {
      // Whole segments behind the cursor are done: delete them (nsqd does the same).
      // Off the event loop: unlinking a 100 MiB file took milliseconds of it.
      for (let f = this.#meta.readFile; f < file; f++) rm(this.#file(f), { force: true }, () => {});
    }
    this.#meta.readFile = file;
    this.#meta.readPos = pos;
  }

  #metaText(): string {
    const unreleased = this.#outstanding.length - this.#outHead;
    return JSON.stringify({ ...this.#meta, depth: this.#depth + unreleased });
  }

  /** Metadata, atomically (tmp + fsync + rename), on the event loop: for close(). */
  #writeMeta(): void {
    const tmp = `${this.#metaPath}.tmp`;
    writeFileSync(tmp, this.#metaText());
    const fd = openSync(tmp, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.#metaPath);
  }

  /** Flush, fsync the segment, write the metadata, all on the event loop (durable sync, close). */
  #persistNow(): void {
    this.#flush();
    if (this.#writeFd !== undefined) fsyncSync(this.#writeFd);
    this.#writeMeta();
  }

  /** Runs `op` after every persistence op queued before it. */
  #then(op: () => void | Promise<void>): Promise<void> {
    const run = this.#chain.then(op);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Flush, then fsync the segment and write the metadata off the event loop. The metadata is
   * taken at the flush, so it never names bytes the fsync did not cover.
   */
  async #persist(): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    const fd = this.#writeFd;
    const meta = this.#metaText();
    if (fd !== undefined) await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
    const tmp = `${this.#metaPath}.tmp`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(meta);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (!this.#closed) await rename(tmp, this.#metaPath);
  }

  /**
   * Everything put so far is on disk when this resolves (group commit: concurrent callers share
   * one); with `durable: false`, written to the kernel at once.
   */
  sync(): Promise<void> {
    if (this.#o.durable === false) {
      if (!this.#closed) this.#flush();
      return Promise.resolve();
    }
    this.#nextSync ??= this.#then(() => {
      this.#nextSync = undefined;
      // On the event loop, unlike checkpoints: every publisher is waiting for this fsync anyway,
      // and the thread pool's hops (fsync, then five for the metadata) made each commit slower
      // (measured: durable confirmed publishing 188k -> 80k msg/s in bench/disk.bench.ts).
      if (!this.#closed) this.#persistNow();
    });
    return this.#nextSync;
  }

  /** The periodic save of the default mode: like sync(), nobody waits; skipped while one runs. */
  checkpoint(): void {
    if (this.#closed || this.#checkpointing) return;
    this.#checkpointing = true;
    this.#then(() => this.#persist())
      .catch((cause: unknown) => this.#report(this.#metaPath, 0, `checkpoint failed: ${(cause as Error).message}`))
      .finally(() => {
        this.#checkpointing = false;
      });
  }

  empty(): void {
    this.#flush();
    for (const m of this.#outstanding.slice(this.#outHead)) m.released = true;
    this.#outstanding.length = 0;
    this.#outHead = 0;
    this.#nextFile = this.#meta.writeFile;
    this.#nextPos = this.#meta.writePos;
    this.#depth = 0;
    this.#advanceCursor();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#chain;
    if (this.#closed) return;
    this.#persistNow();
    this.#closed = true;
    this.#closeFds();
  }

  #closeFds(): void {
    if (this.#writeFd !== undefined) closeSync(this.#writeFd);
    if (this.#readFd !== undefined) closeSync(this.#readFd);
    this.#writeFd = undefined;
    this.#readFd = undefined;
  }

  async delete(): Promise<void> {
    this.#closed = true;
    await this.#chain;
    this.#closeFds();
    for (let f = this.#meta.readFile; f <= this.#meta.writeFile; f++) rmSync(this.#file(f), { force: true });
    rmSync(this.#metaPath, { force: true });
    rmSync(`${this.#metaPath}.tmp`, { force: true });
  }
}

