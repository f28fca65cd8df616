import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1:<port 0> that forwards to a broker, so a test can cut every live
 * connection (`dropAll`) or refuse new ones for a while (`refuse`) — the generic way to test
 * "the socket died" against any real broker without stopping it.
 *
 * @example
 * const proxy = await TcpProxy.start('127.0.0.1', 5672);
 * const transport = await connect(`amqp://guest:guest@127.0.0.1:${proxy.port}`);
 * proxy.dropAll();
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #refusing = false;
  #stalled = false;
  /** Connections accepted so far. */
  accepted = 0;
  /** When each refused connection arrived (`performance.now()`), to see how clients retry. */
  readonly refusedAt: number[] = [];

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    let proxy!: TcpProxy;
    const server = createServer((client) => {
      if (proxy.#refusing) {
        proxy.refusedAt.push(performance.now());
        client.destroy();
        return;
      }
      proxy.accepted++;
      const upstream = netConnect({ host: targetHost, port: targetPort });
      const pair: [Socket, Socket] = [client, upstream];
      proxy.#pairs.add(pair);
      const close = () => {
        proxy.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      if (proxy.#stalled) hold(pair);
      else flow(pair);
    });
    proxy = new TcpProxy(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  /** Kills every live connection at once, both directions, mid-stream. */
  dropAll(): void {
    for (const [client, upstream] of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
  }

  /**
   * While true, no byte moves in either direction on any connection, old or new: nothing is
   * closed, nothing dropped — what a hung broker or a black-holed network looks like to a client.
   * Set back to false, the held bytes flow on.
   */
  stall(on: boolean): void {
    this.#stalled = on;
    for (const pair of this.#pairs) (on ? hold : flow)(pair);
  }

  /** While true, new connections are closed as soon as they arrive. */
  refuse(on: boolean): void {
    this.#refusing = on;
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function flow([client, upstream]: [Socket, Socket]): void {
  client.pipe(upstream);
  upstream.pipe(client);
}

/** Unpiped and paused, a socket stops reading: what is sent to it waits in the kernel's buffers. */
function hold([client, upstream]: [Socket, Socket]): void {
  client.unpipe(upstream);
  upstream.unpipe(client);
  client.pause();
  upstream.pause();
}
