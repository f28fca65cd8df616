/**
 * One nsqlookupd, seen from the broker as nsqd sees it (nsqd `lookup_peer.go`): a TCP connection
 * speaking lookupd's protocol V1, one command at a time, each answered by a size-prefixed reply.
 *
 *   broker → lookupd, once:  "  V1"
 *   command:                 "IDENTIFY\n" [size u32][json]   "REGISTER topic [channel]\n"
 *                            "UNREGISTER topic [channel]\n"  "PING\n"
 *   lookupd → broker:        [size u32][data]   ("OK", the IDENTIFY json, or "E_... text")
 *
 * Like nsqd, a lost connection is not redialled on a timer of its own: the next command (at the
 * latest the next PING) dials again, and every fresh connection first runs `onConnect`
 * (IDENTIFY, then REGISTER of everything that exists), so lookupd's view is rebuilt.
 */
import { Socket } from 'node:net';
import { ConveyorError } from '../../core/errors.ts';

const MAGIC_V1 = Buffer.from('  V1', 'latin1');

export interface LookupCommand {
  line: string;
  body?: Buffer;
}

export class LookupPeer {
  readonly address: string;
  #host: string;
  #port: number;
  #timeoutMs: number;
  #onConnect: (peer: LookupPeer) => Promise<void>;
  #socket: Socket | undefined;
  #buffered: Buffer = Buffer.alloc(0);
  #waiting: { resolve: (data: Buffer) => void; reject: (err: Error) => void } | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(address: string, onConnect: (peer: LookupPeer) => Promise<void>, timeoutMs: number) {
    const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
    if (!match || Number(match[3]) > 65535 || Number(match[3]) === 0) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `lookupd TCP address: expected host:port, got ${JSON.stringify(address)}`);
    }
    this.address = address;
    this.#host = match[1] ?? match[2] ?? '';
    this.#port = Number(match[3]);
    this.#onConnect = onConnect;
    this.#timeoutMs = timeoutMs;
  }

  get connected(): boolean {
    return this.#socket !== undefined;
  }

  /**
   * Queues a command behind the ones before it; dials first when disconnected. Resolves with the
   * reply (an "E_..." reply is returned, not thrown: lookupd keeps the connection for most of them).
   * `undefined` only dials.
   */
  command(cmd: LookupCommand | undefined): Promise<Buffer | undefined> {
    const run = this.#chain.then(() => this.#run(cmd, true));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Sends on the current connection without re-entering the queue: for use inside onConnect. */
  send(cmd: LookupCommand): Promise<Buffer> {
    return this.#exchange(cmd);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#drop(new ConveyorError('ERR_CLOSED', `lookupd ${this.address}: closed`));
    return this.#chain.then(() => undefined);
  }

  async #run(cmd: LookupCommand | undefined, dial: boolean): Promise<Buffer | undefined> {
    if (this.#closed) throw new ConveyorError('ERR_CLOSED', `lookupd ${this.address}: closed`);
    if (this.#socket === undefined && dial) {
      await this.#dial();
      try {
        await this.#onConnect(this);
      } catch (err) {
        this.#drop(err as Error);
        throw err;
      }
    }
    return cmd === undefined ? undefined : this.#exchange(cmd);
  }

  #dial(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new Socket();
      const fail = (err: Error) => {
        socket.destroy();
        reject(new ConveyorError('ERR_TRANSPORT', `lookupd ${this.address}: ${err.message}`, { cause: err, retryable: true }));
      };
      socket.setTimeout(this.#timeoutMs, () => fail(new Error(`no connection within ${this.#timeoutMs} ms`)));
      socket.once('error', fail);
      socket.connect(this.#port, this.#host, () => {
        socket.off('error', fail);
        socket.setTimeout(0);
        socket.setNoDelay(true);
        // Events of a connection already replaced must not drop its successor.
        socket.on('data', (chunk: Buffer) => this.#socket === socket && this.#data(chunk));
        socket.on('error', (err) => this.#socket === socket && this.#drop(err));
        socket.on('close', () => this.#socket === socket && this.#drop(new Error('connection closed')));
        this.#socket = socket;
        this.#buffered = Buffer.alloc(0);
        socket.write(MAGIC_V1);
        resolve();
      });
    });
  }

  #exchange(cmd: LookupCommand): Promise<Buffer> {
    const socket = this.#socket;
    if (socket === undefined) {
      return Promise.reject(new ConveyorError('ERR_TRANSPORT', `lookupd ${this.address}: not connected`, { retryable: true }));
    }
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#drop(new Error(`no reply to ${cmd.line.trim()} within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#waiting = {
        resolve: (data) => {
          clearTimeout(timer);
          resolve(data);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const head = Buffer.from(cmd.line, 'latin1');
      if (cmd.body === undefined) socket.write(head);
      else {
        const size = Buffer.allocUnsafe(4);
        size.writeUInt32BE(cmd.body.length, 0);
        socket.write(Buffer.concat([head, size, cmd.body]));
      }
      this.#data(Buffer.alloc(0));
    });
  }

  #data(chunk: Buffer): void {
    if (chunk.length > 0) this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    if (this.#waiting === undefined || this.#buffered.length < 4) return;
    const size = this.#buffered.readUInt32BE(0);
    // lookupd's replies are a few hundred bytes; anything huge is not lookupd talking.
    if (size > 1024 * 1024) {
      this.#drop(new Error(`reply of ${size} bytes: not an nsqlookupd`));
      return;
    }
    if (this.#buffered.length < 4 + size) return;
    const data = this.#buffered.subarray(4, 4 + size);
    this.#buffered = this.#buffered.subarray(4 + size);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting.resolve(Buffer.from(data));
  }

  #drop(err: Error): void {
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.destroy();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(
      err instanceof ConveyorError ? err : new ConveyorError('ERR_TRANSPORT', `lookupd ${this.address}: ${err.message}`, { cause: err, retryable: true }),
    );
  }
}
