import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ConveyorError } from '../../core/errors.ts';
import { CLS, decodeMessage, FRAME_ERROR, FRAME_MESSAGE, FRAME_RESPONSE, FrameReader, identifyCommand, MAGIC_V2, NOP, type WireMessage } from './wire.ts';

/** What nsqd answers to IDENTIFY with feature_negotiation (the fields the client reads). */
export interface IdentifyResponse {
  max_rdy_count?: number;
  max_msg_timeout?: number;
  msg_timeout?: number;
  version?: string;
  /** Not sent by nsqd 1.x; read when a server does, else the configured limit applies. */
  max_msg_size?: number;
  max_body_size?: number;
  auth_required?: boolean;
  tls_v1?: boolean;
}

/** TLS and AUTH towards nsqd (`?tls=true&authSecret=...`, src/transports/nsq/options.ts). */
export interface NsqSecurity {
  /** Upgrade after IDENTIFY (tls_v1), as go-nsq and nsqjs do. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean; servername?: string };
  /** Sent with AUTH when nsqd answers auth_required. */
  authSecret?: string;
}

/** What nsqd's AUTH answered. */
export interface AuthResponse {
  identity?: string;
  identity_url?: string;
  permission_count?: number;
}

/** nsqd's answers that mean this client may not do that: retrying with the same secret cannot help. */
const DENIED = new Set(['E_UNAUTHORIZED', 'E_AUTH_FIRST', 'E_AUTH_DISABLED']);

export interface ConnectionHandlers {
  onMessage?(message: WireMessage, conn: NsqConnection): void;
  /** The socket is gone (error, nsqd closed it, heartbeat missed). Not called after `close()`. */
  onClose(err: ConveyorError | undefined, conn: NsqConnection): void;
}

export interface ConnectionOptions {
  host: string;
  port: number;
  identify: Record<string, unknown>;
  connectTimeoutMs: number;
  /** Heartbeat interval asked of nsqd; the connection is dead after two are missed. */
  heartbeatIntervalMs: number;
  maxFrameBytes: number;
  security?: NsqSecurity;
}

/** Non-fatal errors: nsqd keeps the connection and the command they answer expected no response. */
const NON_FATAL = new Set(['E_FIN_FAILED', 'E_REQ_FAILED', 'E_TOUCH_FAILED']);

interface Pending {
  resolve(data: Buffer): void;
  reject(err: ConveyorError): void;
}

/**
 * One TCP connection to one nsqd: magic, IDENTIFY, then commands. Responses (OK, errors) answer
 * commands in the order they were sent, so pending commands are a FIFO. Writes made in one tick
 * are corked into one syscall (a burst of FINs, a batch of MPUBs). It never reconnects itself:
 * its owner (publisher, subscription) makes a new one.
 */
export class NsqConnection {
  readonly address: string;
  identity: IdentifyResponse = {};
  /** nsqd's answer to AUTH, when it asked for one. */
  auth: AuthResponse | undefined;
  #socket: Socket | undefined;
  #options: ConnectionOptions;
  #handlers: ConnectionHandlers;
  #reader: FrameReader;
  #pending: Pending[] = [];
  #alive = false;
  #closed = false;
  #corked = false;
  #lastRead = Date.now();
  #watchdog: NodeJS.Timeout | undefined;

  constructor(options: ConnectionOptions, handlers: ConnectionHandlers) {
    this.#options = options;
    this.#handlers = handlers;
    this.address = `${options.host}:${options.port}`;
    this.#reader = new FrameReader(options.maxFrameBytes);
  }

  /** Whether commands written now reach nsqd (false once closed or lost). */
  get alive(): boolean {
    return this.#alive;
  }

  /** Dials, sends the magic and IDENTIFY; resolves with nsqd's answer. */
  async open(): Promise<IdentifyResponse> {
    const { host, port, connectTimeoutMs } = this.#options;
    const socket = netConnect({ host, port, noDelay: true });
    this.#socket = socket;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConveyorError('ERR_TRANSPORT', `nsq: connecting to ${this.address} timed out after ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (cause) => {
        clearTimeout(timer);
        reject(new ConveyorError('ERR_TRANSPORT', `nsq: cannot connect to ${this.address}: ${cause.message}`, { cause }));
      });
    });
    this.#alive = true;
    this.#listen(socket);
    socket.write(MAGIC_V2);
    const security = this.#options.security;
    const identify = security?.tls ? { ...this.#options.identify, tls_v1: true } : this.#options.identify;
    const answer = await this.command(identifyCommand(identify));
    const text = answer.toString('utf8');
    if (text !== 'OK') {
      try {
        this.identity = JSON.parse(text) as IdentifyResponse;
      } catch (cause) {
        this.destroy();
        throw new ConveyorError('ERR_PROTOCOL', `nsq: IDENTIFY answer from ${this.address} is not JSON: ${text.slice(0, 100)}`, { cause });
      }
    }
    if (security?.tls) {
      if (this.identity.tls_v1 !== true) {
        this.destroy();
        // Never carry on in the clear when TLS was asked for.
        throw new ConveyorError('ERR_TRANSPORT', `nsq: ${this.address} does not offer TLS (start nsqd with --tls-cert/--tls-key), and ?tls=true asks for it`, {
          retryable: false,
        });
      }
      await this.#upgrade(security.tls);
    }
    if (this.identity.auth_required) {
      if (security?.authSecret === undefined) {
        this.destroy();
        throw new ConveyorError('ERR_TRANSPORT', `nsq: ${this.address} requires AUTH: give the secret as ?authSecret=`, { retryable: false });
      }
      const reply = await this.command(authCommand(security.authSecret)).catch((err: unknown) => {
        this.destroy();
        throw err;
      });
      try {
        this.auth = JSON.parse(reply.toString('utf8')) as AuthResponse;
      } catch {
        this.auth = {};
      }
    }
    const hb = this.#options.heartbeatIntervalMs;
    if (hb > 0) {
      this.#watchdog = setInterval(() => {
        if (Date.now() - this.#lastRead > 2 * hb) this.#socket?.destroy();
      }, hb);
      this.#watchdog.unref();
    }
    return this.identity;
  }

  #listen(socket: Socket): void {
    socket.on('data', this.#dataListener);
    socket.on('error', noop); // 'close' follows and carries the news
    socket.on('close', this.#closeListener);
  }

  #dataListener = (chunk: Buffer): void => this.#onData(chunk);
  #closeListener = (): void => this.#lost(new ConveyorError('ERR_TRANSPORT', `nsq: connection to ${this.address} closed`));

  /**
   * nsqd answered tls_v1: true, so the same socket becomes a TLS client socket (the client
   * speaks first), and nsqd's OK is the first frame over TLS.
   */
  async #upgrade(options: NonNullable<NsqSecurity['tls']>): Promise<void> {
    const raw = this.#socket!;
    raw.off('data', this.#dataListener);
    raw.off('close', this.#closeListener);
    const { host } = this.#options;
    const secure = tlsConnect({
      socket: raw,
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      rejectUnauthorized: options.rejectUnauthorized,
      servername: options.servername ?? (isIP(host) ? undefined : host),
    });
    this.#socket = secure;
    const ok = new Promise<Buffer>((resolve, reject) => this.#pending.push({ resolve, reject }));
    this.#listen(secure);
    try {
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', (cause) =>
          reject(new ConveyorError('ERR_TRANSPORT', `nsq: TLS with ${this.address} failed: ${cause.message}`, { cause, retryable: false })),
        );
      });
      const answer = await ok;
      if (answer.toString('utf8') !== 'OK') throw new ConveyorError('ERR_PROTOCOL', `nsq: ${this.address} answered ${answer.toString('utf8').slice(0, 100)} after the TLS upgrade`);
    } catch (err) {
      ok.catch(noop);
      this.destroy();
      throw err;
    }
  }

  /** Sends a command that nsqd answers (IDENTIFY, SUB, PUB, MPUB, DPUB, CLS). */
  command(buf: Buffer): Promise<Buffer> {
    if (!this.#alive) {
      return Promise.reject(new ConveyorError('ERR_TRANSPORT', `nsq: connection to ${this.address} is down`));
    }
    return new Promise<Buffer>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.write(buf);
    });
  }

  /** Sends a command nsqd does not answer on success (RDY, FIN, REQ, TOUCH, NOP). */
  write(buf: Buffer): void {
    const socket = this.#socket;
    if (!this.#alive || !socket) return;
    if (!this.#corked) {
      this.#corked = true;
      socket.cork();
      process.nextTick(uncork, this);
    }
    socket.write(buf);
  }

  /** @internal */
  uncork(): void {
    this.#corked = false;
    this.#socket?.uncork();
  }

  #onData(chunk: Buffer): void {
    this.#lastRead = Date.now();
    try {
      this.#reader.push(chunk, (type, data) => this.#onFrame(type, data));
    } catch (err) {
      this.#lost(err instanceof ConveyorError ? err : new ConveyorError('ERR_PROTOCOL', String(err)));
      this.#socket?.destroy();
    }
  }

  #onFrame(type: number, data: Buffer): void {
    if (type === FRAME_MESSAGE) {
      this.#handlers.onMessage?.(decodeMessage(data), this);
      return;
    }
    if (type === FRAME_RESPONSE) {
      if (data.length === 11 && data.toString('latin1') === '_heartbeat_') {
        this.write(NOP);
        return;
      }
      this.#pending.shift()?.resolve(data);
      return;
    }
    if (type === FRAME_ERROR) {
      const text = data.toString('utf8');
      const code = text.split(' ', 1)[0]!;
      if (NON_FATAL.has(code)) return; // a late FIN/REQ/TOUCH: the message timed out and went back
      const err = new ConveyorError('ERR_TRANSPORT', `nsq: ${this.address} answered ${text}`, {
        details: { nsqCode: code },
        retryable: code !== 'E_BAD_TOPIC' && code !== 'E_BAD_CHANNEL' && code !== 'E_BAD_MESSAGE' && code !== 'E_BAD_BODY' && !DENIED.has(code),
      });
      const pending = this.#pending.shift();
      if (pending) pending.reject(err);
      return;
    }
    this.#lost(new ConveyorError('ERR_PROTOCOL', `nsq: unknown frame type ${type} from ${this.address}`));
    this.#socket?.destroy();
  }

  #lost(err: ConveyorError): void {
    if (!this.#alive && this.#pending.length === 0) return;
    const wasAlive = this.#alive;
    this.#alive = false;
    clearInterval(this.#watchdog);
    for (const p of this.#pending.splice(0)) p.reject(err);
    if (wasAlive && !this.#closed) this.#handlers.onClose(err, this);
  }

  /**
   * Subscriber close: CLS, then wait (bounded) for CLOSE_WAIT, then hang up. nsqd requeues what
   * was in flight on this connection.
   */
  async close(waitMs = 1000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#alive) {
      const answered = this.command(CLS).catch(() => undefined);
      await Promise.race([answered, new Promise((r) => setTimeout(r, waitMs).unref())]);
    }
    this.destroy();
  }

  destroy(): void {
    this.#closed = true;
    this.#alive = false;
    clearInterval(this.#watchdog);
    for (const p of this.#pending.splice(0)) p.reject(new ConveyorError('ERR_CLOSED', `nsq: connection to ${this.address} closed`));
    this.#socket?.destroy();
  }
}

function noop(): void {}

/** AUTH\n [4-byte size][secret] */
function authCommand(secret: string): Buffer {
  const body = Buffer.from(secret, 'utf8');
  const out = Buffer.allocUnsafe(5 + 4 + body.length);
  out.write('AUTH\n', 0, 'latin1');
  out.writeUInt32BE(body.length, 5);
  body.copy(out, 9);
  return out;
}

function uncork(conn: NsqConnection): void {
  conn.uncork();
}
