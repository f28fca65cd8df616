/**
 * A raw protocol V2 client for the server's conformance tests: writes exact bytes and reads
 * frames as they arrive, so tests can check every byte the server sends and when it hangs up.
 */
import { connect, type Socket } from 'node:net';

export interface Frame {
  type: number;
  data: Buffer;
}

export interface WireMessage {
  timestampNs: bigint;
  attempts: number;
  id: string;
  body: Buffer;
}

export function decodeMessage(data: Buffer): WireMessage {
  return {
    timestampNs: data.readBigInt64BE(0),
    attempts: data.readUInt16BE(8),
    id: data.toString('latin1', 10, 26),
    body: data.subarray(26),
  };
}

export function cmd(line: string, body?: Buffer | string): Buffer {
  const head = Buffer.from(`${line}\n`, 'latin1');
  if (body === undefined) return head;
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length);
  return Buffer.concat([head, size, payload]);
}

export function mpubBody(messages: (Buffer | string)[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4)];
  parts[0]!.writeInt32BE(messages.length);
  for (const m of messages) {
    const b = typeof m === 'string' ? Buffer.from(m) : m;
    const size = Buffer.alloc(4);
    size.writeInt32BE(b.length);
    parts.push(size, b);
  }
  return Buffer.concat(parts);
}

export class WireClient {
  readonly socket: Socket;
  readonly frames: Frame[] = [];
  closed = false;
  #buf = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  /** Answer heartbeats with NOP, as a well-behaved client does. */
  answerHeartbeats = true;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, chunk]);
      while (this.#buf.length >= 4) {
        const size = this.#buf.readUInt32BE(0);
        if (this.#buf.length < 4 + size) break;
        const frame = { type: this.#buf.readUInt32BE(4), data: Buffer.from(this.#buf.subarray(8, 4 + size)) };
        this.#buf = this.#buf.subarray(4 + size);
        if (frame.type === 0 && frame.data.toString() === '_heartbeat_') {
          if (this.answerHeartbeats && !socket.destroyed) socket.write('NOP\n');
        }
        this.frames.push(frame);
      }
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  static async open(address: string, magic = true): Promise<WireClient> {
    const i = address.lastIndexOf(':');
    const socket = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new WireClient(socket);
    if (magic) socket.write('  V2');
    return client;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** Next frame that is not a heartbeat (unless heartbeats are asked for), waiting up to timeoutMs. */
  async next(timeoutMs = 2000, { heartbeats = false } = {}): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.frames.length > 0) {
        const f = this.frames.shift()!;
        if (!heartbeats && f.type === 0 && f.data.toString() === '_heartbeat_') continue;
        return f;
      }
      if (this.closed) throw new Error('connection closed while waiting for a frame');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async response(timeoutMs?: number): Promise<string> {
    const f = await this.next(timeoutMs);
    if (f.type !== 0) throw new Error(`expected a response frame, got type ${f.type}: ${f.data.toString()}`);
    return f.data.toString();
  }

  async error(timeoutMs?: number): Promise<string> {
    const f = await this.next(timeoutMs);
    if (f.type !== 1) throw new Error(`expected an error frame, got type ${f.type}: ${f.data.toString()}`);
    return f.data.toString();
  }

  async message(timeoutMs?: number): Promise<WireMessage> {
    const f = await this.next(timeoutMs);
    if (f.type !== 2) throw new Error(`expected a message frame, got type ${f.type}: ${f.data.toString()}`);
    return decodeMessage(f.data);
  }

  /** Resolves true once the server has closed the connection, false after timeoutMs. */
  async waitClosed(timeoutMs = 2000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  /** No frame at all arrives within ms (other than heartbeats). */
  async quiet(ms: number): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return !this.frames.some((f) => !(f.type === 0 && f.data.toString() === '_heartbeat_'));
  }

  close(): void {
    this.socket.destroy();
  }
}
