/**
 * The embedded broker as a server: nsqd's TCP protocol V2 and HTTP API over an engine, so that
 * any NSQ client (go-nsq, pynsq, nsqjs, the seeds' Python services) can talk to it.
 *
 * @example
 * const broker = await startBroker({ tcp: '127.0.0.1:4150', http: '127.0.0.1:4151' });
 * console.log(broker.tcpAddress, broker.httpAddress);
 * await broker.close();
 */
import type { Server } from 'node:http';
import { ConveyorError } from '../core/errors.ts';
import { Engine } from '../engine/index.ts';
import type { BackendFactory } from '../engine/types.ts';
import type { ServerEngine } from './engine.ts';
import { createHttpServer, type MountedHandler } from './http/server.ts';
import { type LookupdRegistration, registerWithLookupd } from './lookupd/index.ts';
import { type ProtocolLimits, parseHostPort, resolveLimits } from './options.ts';
import type { ClientState } from './tcp/client.ts';
import { TcpServer } from './tcp/server.ts';

export interface BrokerOptions extends Partial<ProtocolLimits> {
  /**
   * The engine to serve. When omitted, one is made from `engineFactory` (or the default engine)
   * and closed with the broker; a given engine is left open for its owner.
   */
  engine?: ServerEngine;
  /** Makes the engine when `engine` is not given, instead of the default one. */
  engineFactory?: () => ServerEngine | Promise<ServerEngine>;
  /** Messages each topic and channel keeps in memory before its backend (nsqd --mem-queue-size). @default 10000 */
  memQueueSize?: number;
  /** Storage past the memory queue (the disk queue for --data-dir). @default in memory only */
  backend?: BackendFactory;
  /** Where the NSQ TCP protocol listens, "host:port"; port 0 picks one. @default "127.0.0.1:4150" */
  tcp?: string;
  /** Where the HTTP API listens, "host:port"; port 0 picks one. @default "127.0.0.1:4151" */
  http?: string;
  /** nsqlookupd TCP addresses to register with, as nsqd's --lookupd-tcp-address. @default none */
  lookupdTcpAddresses?: string[];
  /** The address nsqlookupd hands to consumers (nsqd --broadcast-address). @default the TCP host, or the hostname when bound to all */
  broadcastAddress?: string;
  /** nsqd's 15 s PING to each nsqlookupd, which also redials a lost one. @default 15000 */
  lookupdPingIntervalMs?: number;
  /** Where the broker reports what it cannot do itself (a lookupd it cannot reach). @default nowhere */
  log?: (line: string) => void;
}

export interface Broker {
  /** The bound TCP address, "host:port" (the real port when 0 was asked for). */
  readonly tcpAddress: string;
  readonly httpAddress: string;
  readonly engine: ServerEngine;
  /** The NSQ TCP clients connected now (the dashboard names consumers by them). */
  clients(): ClientState[];
  /** Serves `handler` (the dashboard) on the HTTP listener, for the requests it `owns`. */
  mount(handler: MountedHandler): void;
  /** Stops listening, closes every client after flushing it, then closes an engine it made. */
  close(): Promise<void>;
}

export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  const limits = resolveLimits(options);
  const tcp = parseHostPort(options.tcp ?? '127.0.0.1:4150', 'tcp');
  const http = parseHostPort(options.http ?? '127.0.0.1:4151', 'http');
  const ownsEngine = options.engine === undefined;
  let engine: ServerEngine;
  if (options.engine) engine = options.engine;
  else if (options.engineFactory) engine = await options.engineFactory();
  else engine = defaultEngine(options, limits);

  const startTime = Date.now();
  const tcpServer = new TcpServer(engine, limits);
  let tcpAddress = '';
  let httpAddress = '';
  const mounts: MountedHandler[] = [];
  const clients = () => [...tcpServer.connections()].map((c) => c.client);
  const httpServer: Server = createHttpServer({
    engine,
    limits,
    startTime,
    clients,
    mounts,
    tcpAddress: () => tcpAddress,
    httpAddress: () => httpAddress,
  });
  try {
    tcpAddress = await tcpServer.listen(tcp.host, tcp.port);
    httpAddress = await new Promise<string>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(http.port, http.host, () => {
        httpServer.off('error', reject);
        const a = httpServer.address();
        if (a === null || typeof a === 'string') resolve(String(a));
        else resolve(a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
      });
    });
  } catch (cause) {
    await tcpServer.close();
    httpServer.close();
    if (ownsEngine) await engine.close();
    throw new ConveyorError('ERR_TRANSPORT', `broker could not listen: ${(cause as Error).message}`, { cause });
  }

  let lookupd: LookupdRegistration | undefined;
  if (options.lookupdTcpAddresses !== undefined && options.lookupdTcpAddresses.length > 0) {
    try {
      lookupd = registerWithLookupd(
        engine,
        { tcpAddress, httpAddress },
        {
          addresses: options.lookupdTcpAddresses,
          broadcastAddress: options.broadcastAddress,
          pingIntervalMs: options.lookupdPingIntervalMs,
          log: options.log,
        },
      );
    } catch (err) {
      await tcpServer.close();
      httpServer.close();
      if (ownsEngine) await engine.close();
      throw err;
    }
  }

  let closing: Promise<void> | undefined;
  return {
    tcpAddress,
    httpAddress,
    engine,
    clients,
    mount: (handler) => void mounts.push(handler),
    close() {
      closing ??= (async () => {
        await lookupd?.close();
        const httpClosed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        httpServer.closeIdleConnections();
        await tcpServer.close();
        httpServer.closeAllConnections();
        await httpClosed;
        if (ownsEngine) await engine.close();
      })();
      return closing;
    },
  };
}

/** An engine whose limits agree with the protocol's, so that what the server accepts the engine does too. */
function defaultEngine(options: BrokerOptions, limits: ProtocolLimits): ServerEngine {
  return new Engine({
    memQueueSize: options.memQueueSize,
    backend: options.backend,
    maxMsgSize: limits.maxMsgSize,
    maxRdyCount: limits.maxRdyCount,
    msgTimeoutMs: limits.msgTimeoutMs,
    maxMsgTimeoutMs: limits.maxMsgTimeoutMs,
    maxReqTimeoutMs: limits.maxReqTimeoutMs,
  });
}

export { type ProtocolLimits, DEFAULT_LIMITS, SERVER_VERSION } from './options.ts';
export type { ServerEngine, ServerTopic, ServerChannel } from './engine.ts';
export type { MountedHandler } from './http/server.ts';
