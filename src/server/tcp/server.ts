/**
 * The TCP listener for protocol V2: accepts connections, hands each to a Connection, and keeps
 * the live ones for /stats and for a graceful close.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { ServerEngine } from '../engine.ts';
import type { ProtocolLimits } from '../options.ts';
import type { Security } from './commands.ts';
import { Connection } from './connection.ts';

export class TcpServer {
  readonly #server: Server;
  readonly #connections = new Set<Connection>();
  #nextId = 0;

  constructor(engine: ServerEngine, limits: ProtocolLimits, security: Security = { tls: undefined, auth: undefined }) {
    const ctx = {
      engine,
      limits,
      security,
      onClose: (connection: Connection) => {
        this.#connections.delete(connection);
      },
    };
    this.#server = createServer({ noDelay: true }, (socket: Socket) => {
      this.#connections.add(new Connection(socket, ++this.#nextId, ctx));
    });
    bound(this.#server, limits);
  }

  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        const address = this.#server.address();
        if (address === null || typeof address === 'string') return resolve(String(address));
        resolve(address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`);
      });
    });
  }

  /** Live connections (for /stats). */
  connections(): Iterable<Connection> {
    return this.#connections;
  }

  /** Stops accepting, closes every connection after flushing it, resolves once all are gone. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const connection of this.#connections) connection.close();
    });
  }
}

/**
 * At most `maxConnections` open at once: Node closes a connection past it as soon as it is
 * accepted. Idle connections are not kept forever either: every connection, before IDENTIFY
 * too, gets nsqd's read deadline (connection.ts: silent for clientTimeoutMs, it is closed).
 */
function bound(server: Server, limits: ProtocolLimits): void {
  server.maxConnections = limits.maxConnections;
}
