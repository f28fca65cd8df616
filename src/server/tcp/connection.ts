/**
 * One protocol V2 connection: the read loop (commands parsed in place from the bytes received,
 * bodies copied out only when published), the write buffer (frames batched into few socket
 * writes) and the heartbeat/read deadline. Command semantics live in commands.ts.
 *
 * Reading: a chunk is parsed where it lies; only an incomplete command's bytes are kept, in a
 * buffer that grows to at most one command (MAX_LINE + 4 + maxBodySize). Lengths are checked
 * against the limits before any body is waited for, so a lying length costs nothing.
 *
 * Writing: frames are copied into a buffer of the negotiated output_buffer_size and written when
 * it fills or once the engine's current delivery run (or the current read) is over. That is nsqd's "flush when the
 * channel has nothing more for us" rule; it also bounds latency well under any
 * output_buffer_timeout a client may negotiate.
 */
import type { Socket } from 'node:net';
import { encodeEnvelope } from '../../core/envelope.ts';
import type { EngineMessage } from '../../engine/types.ts';
import type { ConsumerSink, ServerEngine } from '../engine.ts';
import type { ProtocolLimits } from '../options.ts';
import { ClientState } from './client.ts';
import {
  AUTH,
  CLS,
  type CommandHost,
  checkBeforeBody,
  checkBodyLength,
  DPUB,
  enforceTls,
  FIN,
  finishAt,
  IDENTIFY,
  MPUB,
  NOP,
  PUB,
  RDY,
  REQ,
  type Reply,
  type Security,
  SUB,
  TOUCH,
} from './commands.ts';
import { ClientError, fatal } from './errors.ts';
import { encodeFrame, FRAME_ERROR, OK_FRAME, HEARTBEAT_FRAME, MESSAGE_FRAME_OVERHEAD, writeMessageFrame } from './frames.ts';
import { findLineEnd, hasBody, MAX_LINE, splitParams } from './parse.ts';
import { peerCommonName, upgradeSocket } from './tls.ts';

/** What the server gives each connection. */
export interface ConnectionContext {
  readonly engine: ServerEngine;
  readonly limits: ProtocolLimits;
  readonly security: Security;
  onClose(connection: Connection): void;
}

const EMPTY = Buffer.alloc(0);
/**
 * Frames collect in a 64 KiB buffer, written when full or when the delivery run ends. nsqd
 * writes in output_buffer_size (16 KiB) pieces; a socket write costs Node far more than Go,
 * and under nsq's bench tools 16 KiB writes were a fifth of the broker's time. A client that
 * asks for a smaller buffer than the default (for latency) still gets writes at its size.
 */
const MIN_OUT_CAPACITY = 64 * 1024;
const DEFAULT_OUTPUT_BUFFER = 16 * 1024;
/** Flushes up to this size are copied out so the write buffer can be kept (Buffer's pool serves them). */
const SMALL_FLUSH = 2048;
/** How long a closing connection may take to hand its last frames to the kernel before it is destroyed. */
const END_GRACE_MS = 1000;

export class Connection implements CommandHost, ConsumerSink {
  readonly client: ClientState;
  readonly engine: ServerEngine;
  readonly limits: ProtocolLimits;
  readonly sink: ConsumerSink = this;
  readonly security: Security;

  #socket: Socket;
  #ctx: ConnectionContext;
  #magic = false;
  #ended = false;
  /** A command is waiting for durability; later commands wait behind it, in order. */
  #blocked = false;
  #paused = false;

  #pend: Buffer = EMPTY;
  #pendStart = 0;
  #pendEnd = 0;

  #out: Buffer;
  /** Buffered bytes that trigger a write before the delivery run ends. */
  #flushAt: number;
  #outLen = 0;
  #flushScheduled = false;
  /** Between the IDENTIFY answer and the TLS handshake's end: nothing may be written (a heartbeat would break the handshake). */
  #upgrading = false;
  #sampledOut: string[] = [];

  #heartbeat: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #lastRead = Date.now();

  constructor(socket: Socket, id: number, ctx: ConnectionContext) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.engine = ctx.engine;
    this.limits = ctx.limits;
    this.security = ctx.security;
    this.client = new ClientState(id, `${socket.remoteAddress}:${socket.remotePort}`, ctx.limits);
    this.#out = Buffer.allocUnsafe(MIN_OUT_CAPACITY);
    this.#flushAt = MIN_OUT_CAPACITY;
    socket.setNoDelay(true);
    this.#listen(socket);
    this.#armHeartbeat();
  }

  #listen(socket: Socket): void {
    socket.on('data', this.#dataListener);
    socket.on('error', this.#errorListener);
    socket.on('close', this.#closeListener);
  }

  #dataListener = (chunk: Buffer): void => this.#onData(chunk);
  #errorListener = (): void => this.#terminate();
  #closeListener = (): void => this.#onClose();

  /** Server shutdown: send what is buffered, then close. */
  close(): void {
    this.#end();
  }

  // ---- ConsumerSink -------------------------------------------------------------------------

  deliver(message: EngineMessage): void {
    if (this.#ended) return; // closing: the consumer is closed right after, which requeues it
    // IDENTIFY sample_rate: nsqd skips the rest, and a skipped message is gone for this channel.
    // It is finished once the engine's delivery run is over, not from inside it.
    if (this.client.sampleRate > 0 && Math.floor(Math.random() * 100) > this.client.sampleRate) {
      this.#sampledOut.push(message.id);
      this.#scheduleFlush();
      return;
    }
    const body = message.headers === undefined ? message.body : encodeEnvelope(message.body, message.headers);
    const need = MESSAGE_FRAME_OVERHEAD + body.length;
    if (this.#outLen + need > this.#out.length) {
      this.#flush();
      if (need > this.#out.length) {
        const frame = Buffer.allocUnsafe(need);
        writeMessageFrame(frame, 0, message.timestamp, message.attempts, message.id, body);
        this.client.messageCount++;
        this.#socket.write(frame);
        return;
      }
    }
    this.#outLen = writeMessageFrame(this.#out, this.#outLen, message.timestamp, message.attempts, message.id, body);
    this.client.messageCount++;
    if (this.#outLen >= this.#flushAt) this.#flush();
    else this.#scheduleFlush();
  }

  /** The channel or topic was deleted (or the engine closed): nsqd closes such clients. */
  detached(): void {
    this.client.consumer = undefined;
    this.#end();
  }

  // ---- CommandHost --------------------------------------------------------------------------

  identified(): void {
    const wanted = Math.max(MIN_OUT_CAPACITY, this.client.outputBufferSize);
    if (wanted !== this.#out.length) {
      this.#flush();
      this.#out = Buffer.allocUnsafe(wanted);
    }
    this.#flushAt = this.client.outputBufferSize < DEFAULT_OUTPUT_BUFFER ? this.client.outputBufferSize : wanted;
    this.#armHeartbeat();
  }

  upgradeTls(answer: Buffer): Promise<Buffer> {
    this.#writeFrame(answer);
    this.#flush();
    this.#upgrading = true;
    const raw = this.#socket;
    // The TLS socket takes over the raw one's reads; its events are the connection's from now on.
    raw.off('data', this.#dataListener);
    raw.off('error', this.#errorListener);
    raw.off('close', this.#closeListener);
    // Swallow a late error on the raw socket: the TLS socket reports it too.
    raw.on('error', () => {});
    return upgradeSocket(raw, this.security.tls!).then(
      (secure) => {
        this.#upgrading = false;
        this.#socket = secure;
        this.client.tls = true;
        this.client.tlsVersion = secure.getProtocol() ?? '';
        this.client.tlsCipherSuite = secure.getCipher()?.standardName ?? '';
        this.client.tlsCommonName = peerCommonName(secure);
        this.#listen(secure);
        if (this.#ended) secure.destroy();
        return OK_FRAME;
      },
      (err: unknown) => {
        this.#terminate();
        this.#onClose();
        throw fatal('E_IDENTIFY_FAILED', `IDENTIFY failed ${(err as Error).message}`);
      },
    );
  }

  remoteIp(): string {
    const ip = this.client.remoteAddress.replace(/:\d+$/, '');
    return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  }

  // ---- reading ------------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#ended) return;
    this.#lastRead = Date.now();
    if (this.#pendEnd === this.#pendStart && !this.#blocked) {
      const used = this.#process(chunk, 0, chunk.length);
      if (used < chunk.length && !this.#ended) this.#keep(chunk, used);
    } else {
      this.#append(chunk);
      if (!this.#blocked) this.#drainPending();
      else if (!this.#paused && this.#pendEnd - this.#pendStart > this.limits.maxBodySize + MAX_LINE) {
        // A pipelining client is far ahead of a durability wait: stop reading until it ends.
        this.#paused = true;
        this.#socket.pause();
      }
    }
    this.#flush();
  }

  #drainPending(): void {
    const used = this.#process(this.#pend, this.#pendStart, this.#pendEnd);
    this.#pendStart = used;
    if (used >= this.#pendEnd) {
      this.#pendStart = 0;
      this.#pendEnd = 0;
      // Do not keep a big body's buffer around for a connection that now sends small commands.
      if (this.#pend.length > 1 << 20) this.#pend = EMPTY;
    }
  }

  /** Keeps chunk[from..] as the start of the pending bytes. */
  #keep(chunk: Buffer, from: number): void {
    const length = chunk.length - from;
    if (this.#pend.length < length) this.#pend = Buffer.allocUnsafe(Math.max(length, 4096));
    chunk.copy(this.#pend, 0, from);
    this.#pendStart = 0;
    this.#pendEnd = length;
  }

  #append(chunk: Buffer): void {
    const held = this.#pendEnd - this.#pendStart;
    if (this.#pendEnd + chunk.length > this.#pend.length) {
      const need = held + chunk.length;
      if (need <= this.#pend.length) {
        this.#pend.copyWithin(0, this.#pendStart, this.#pendEnd);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(need, this.#pend.length * 2));
        this.#pend.copy(grown, 0, this.#pendStart, this.#pendEnd);
        this.#pend = grown;
      }
      this.#pendStart = 0;
      this.#pendEnd = held;
    }
    chunk.copy(this.#pend, this.#pendEnd);
    this.#pendEnd += chunk.length;
  }

  /** Runs every complete command in buf[start, end); returns where the first incomplete one starts. */
  #process(buf: Buffer, start: number, end: number): number {
    while (start < end && !this.#ended && !this.#blocked) {
      if (!this.#magic) {
        if (end - start < 4) return start;
        if (buf[start] !== 32 || buf[start + 1] !== 32 || buf[start + 2] !== 86 || buf[start + 3] !== 50) {
          // nsqd (tcp.go) answers an unknown protocol magic like this and hangs up.
          this.#writeFrame(encodeFrame(FRAME_ERROR, 'E_BAD_PROTOCOL'));
          this.#end();
          return end;
        }
        this.#magic = true;
        start += 4;
        continue;
      }
      // Fast path for the most frequent command, "FIN <16-byte id>\n".
      if (
        buf[start] === 70 &&
        end - start >= 21 &&
        buf[start + 20] === 10 &&
        buf[start + 1] === 73 &&
        buf[start + 2] === 78 &&
        buf[start + 3] === 32
      ) {
        try {
          finishAt(this, buf, start + 4);
        } catch (err) {
          this.#fail(err);
        }
        start += 21;
        continue;
      }
      const lineEnd = findLineEnd(buf, start, end);
      if (lineEnd < 0) {
        if (end - start > MAX_LINE) {
          this.#fail(fatal('E_INVALID', `command line longer than ${MAX_LINE} bytes`));
          return end;
        }
        return start;
      }
      const stop = lineEnd > start && buf[lineEnd - 1] === 13 ? lineEnd - 1 : lineEnd;
      const params = splitParams(buf, start, stop);
      const name = params[0]!;
      let next = lineEnd + 1;
      let reply: Reply;
      try {
        if (hasBody(name)) {
          const max = checkBeforeBody(this, params);
          if (end - next < 4) return start;
          const length = buf.readInt32BE(next);
          checkBodyLength(name, length, max);
          if (end - next - 4 < length) return start;
          const body = buf.subarray(next + 4, next + 4 + length);
          next += 4 + length;
          reply = this.#execWithBody(name, params, body);
        } else {
          reply = this.#exec(name, params);
        }
      } catch (err) {
        this.#fail(err);
        start = next;
        continue;
      }
      start = next;
      if (reply !== undefined) {
        if (reply instanceof Promise) this.#block(reply);
        else this.#writeFrame(reply);
      }
    }
    return start;
  }

  #exec(name: string, params: string[]): Reply {
    enforceTls(this, name);
    switch (name) {
      case 'FIN':
        return FIN(this, params);
      case 'RDY':
        return RDY(this, params);
      case 'REQ':
        return REQ(this, params);
      case 'NOP':
        return NOP(this, params);
      case 'TOUCH':
        return TOUCH(this, params);
      case 'SUB':
        return SUB(this, params);
      case 'CLS':
        return CLS(this, params);
      default:
        throw fatal('E_INVALID', `invalid command ${name}`);
    }
  }

  #execWithBody(name: string, params: string[], body: Buffer): Reply {
    switch (name) {
      case 'PUB':
        return PUB(this, params, body);
      case 'MPUB':
        return MPUB(this, params, body);
      case 'DPUB':
        return DPUB(this, params, body);
      case 'IDENTIFY':
        return IDENTIFY(this, body);
      default:
        return AUTH(this, body);
    }
  }

  /** Holds later commands until `reply` settles, so answers go out in command order. */
  #block(reply: Promise<Buffer>): void {
    this.#blocked = true;
    reply.then(
      (frame) => this.#unblock(frame, undefined),
      (err) => this.#unblock(undefined, err),
    );
  }

  #unblock(frame: Buffer | undefined, err: unknown): void {
    this.#blocked = false;
    if (this.#ended) return;
    if (frame) this.#writeFrame(frame);
    else this.#fail(err);
    if (!this.#ended && this.#pendEnd > this.#pendStart) this.#drainPending();
    if (this.#paused && !this.#blocked && !this.#ended) {
      this.#paused = false;
      this.#socket.resume();
    }
    this.#flush();
  }

  #fail(err: unknown): void {
    const error =
      err instanceof ClientError ? err : fatal('E_INVALID', `internal error: ${err instanceof Error ? err.message : String(err)}`);
    this.#writeFrame(encodeFrame(FRAME_ERROR, error.message));
    if (error.fatal) this.#end();
  }

  // ---- writing ------------------------------------------------------------------------------

  #writeFrame(frame: Buffer): void {
    // Only heartbeats can come while upgrading (IDENTIFY is before SUB); 64 KiB of them is a dead client.
    if (this.#upgrading && this.#outLen + frame.length > this.#out.length) return;
    if (this.#outLen + frame.length > this.#out.length) {
      this.#flush();
      if (frame.length > this.#out.length) {
        this.#socket.write(frame);
        return;
      }
    }
    frame.copy(this.#out, this.#outLen);
    this.#outLen += frame.length;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // After the engine's current delivery run (it delivers in batches from one callback).
    queueMicrotask(this.#flushTask);
  }

  #flushTask = (): void => {
    this.#flushScheduled = false;
    if (this.#sampledOut.length > 0) {
      const ids = this.#sampledOut;
      this.#sampledOut = [];
      for (const id of ids) this.client.consumer?.finish(id);
    }
    this.#flush();
  };

  #flush(): void {
    if (this.#outLen === 0 || this.#upgrading) return;
    if (this.#socket.destroyed || this.#socket.writableEnded) {
      // The peer is gone but 'close' has not fired yet, so deliveries still come: drop what was
      // buffered (still in flight, requeued when the consumer closes) so the buffer has room.
      this.#outLen = 0;
      return;
    }
    let chunk: Buffer;
    if (this.#outLen <= SMALL_FLUSH) {
      // A few small frames (an OK, a heartbeat, one message): copy them out (a pooled slice) and
      // keep the write buffer, rather than give away 16 KiB for a few bytes.
      chunk = Buffer.allocUnsafe(this.#outLen);
      this.#out.copy(chunk, 0, 0, this.#outLen);
    } else {
      // The socket keeps `chunk` until written, so the next frames go to a fresh buffer.
      chunk = this.#out.subarray(0, this.#outLen);
      this.#out = Buffer.allocUnsafe(this.#out.length);
    }
    this.#outLen = 0;
    this.#socket.write(chunk);
  }

  // ---- heartbeats and the read deadline -----------------------------------------------------

  #armHeartbeat(): void {
    clearInterval(this.#heartbeat);
    clearTimeout(this.#deadline);
    this.#heartbeat = undefined;
    this.#deadline = undefined;
    const interval = this.client.heartbeatIntervalMs;
    if (interval <= 0 || this.#ended) return;
    this.#heartbeat = setInterval(this.#sendHeartbeat, interval).unref();
    this.#deadline = setTimeout(this.#checkDeadline, 2 * interval).unref();
  }

  #sendHeartbeat = (): void => {
    this.#writeFrame(HEARTBEAT_FRAME);
    this.#flush();
  };

  /** nsqd's read deadline: a client silent for two heartbeat intervals is gone. */
  #checkDeadline = (): void => {
    const interval = this.client.heartbeatIntervalMs;
    if (interval <= 0 || this.#ended) return;
    const due = this.#lastRead + 2 * interval;
    const now = Date.now();
    if (now >= due) this.#end();
    else this.#deadline = setTimeout(this.#checkDeadline, due - now).unref();
  };

  // ---- closing ------------------------------------------------------------------------------

  /** Stops reading, sends what is buffered, releases the subscription, then closes. */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#flush();
    this.#release();
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), END_GRACE_MS).unref();
  }

  #terminate(): void {
    this.#ended = true;
    this.#release();
    this.#socket.destroy();
  }

  #release(): void {
    clearInterval(this.#heartbeat);
    clearTimeout(this.#deadline);
    const consumer = this.client.consumer;
    if (consumer) {
      this.client.consumer = undefined;
      // In-flight messages go back to the channel now rather than after their timeout.
      consumer.close();
    }
  }

  #onClose(): void {
    this.#ended = true;
    this.#release();
    this.#ctx.onClose(this);
  }
}
