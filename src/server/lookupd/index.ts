/**
 * Registration with nsqlookupd, as nsqd does it (nsqd `lookup.go`), so that consumers that know
 * only nsqlookupd (`nsq.Reader(lookupd_http_addresses=...)`, nsqjs `lookupdHTTPAddresses`,
 * nsqadmin `--lookupd-http-address`) find the broker: on each connection IDENTIFY with the
 * broadcast address and ports, then REGISTER every topic (and each of its channels); afterwards
 * REGISTER/UNREGISTER as topics and channels come and go, and PING every 15 s. lookupd forgets a
 * broker's registrations when its connection closes, so closing needs no UNREGISTER.
 */
import { hostname } from 'node:os';
import { ConveyorError } from '../../core/errors.ts';
import type { ServerEngine, TopicStats, TopologyEvent } from '../engine.ts';
import { SERVER_VERSION } from '../options.ts';
import { type LookupCommand, LookupPeer } from './peer.ts';

export interface LookupdOptions {
  /** nsqlookupd TCP addresses, "host:port" (nsqd --lookupd-tcp-address, repeatable). */
  addresses: string[];
  /**
   * The address lookupd hands to consumers (nsqd --broadcast-address). @default the TCP listen
   * host when it is a specific address, else the machine's hostname (nsqd's default)
   */
  broadcastAddress?: string;
  /** @default 15000, nsqd's */
  pingIntervalMs?: number;
  /** Per command and per dial. @default 5000 */
  timeoutMs?: number;
  /** Where connection problems are reported, once per change of state. @default nowhere */
  log?: (line: string) => void;
}

export interface LookupdRegistration {
  close(): Promise<void>;
}

/** What the broker listens on, as bound (real ports when 0 was asked for). */
export interface BrokerAddresses {
  tcpAddress: string;
  httpAddress: string;
}

export function registerWithLookupd(engine: ServerEngine, self: BrokerAddresses, options: LookupdOptions): LookupdRegistration {
  if (typeof engine.watch !== 'function') {
    throw new ConveyorError('ERR_BAD_OPTIONS', 'this engine does not report its topics as they change, so it cannot register with nsqlookupd');
  }
  const tcp = splitHostPort(self.tcpAddress);
  const http = splitHostPort(self.httpAddress);
  const identify = {
    version: SERVER_VERSION,
    tcp_port: tcp.port,
    http_port: http.port,
    hostname: hostname(),
    broadcast_address: options.broadcastAddress ?? defaultBroadcast(tcp.host),
  };
  const log = options.log ?? (() => {});
  const timeoutMs = options.timeoutMs ?? 5000;
  const healthy = new Map<LookupPeer, boolean>();

  const onConnect = async (peer: LookupPeer): Promise<void> => {
    const reply = await peer.send({ line: 'IDENTIFY\n', body: Buffer.from(JSON.stringify(identify), 'utf8') });
    if (reply.toString('latin1').startsWith('E_')) {
      throw new ConveyorError('ERR_TRANSPORT', `lookupd ${peer.address} refused IDENTIFY: ${reply.toString('latin1')}`);
    }
    for (const cmd of currentRegistrations(engine)) await peer.send(cmd);
  };
  const peers = [...new Set(options.addresses)].map((a) => new LookupPeer(a, onConnect, timeoutMs));

  const issue = (peer: LookupPeer, cmd: LookupCommand | undefined) => {
    peer.command(cmd).then(
      (reply) => {
        const text = reply?.toString('latin1') ?? 'OK';
        if (text.startsWith('E_')) log(`lookupd ${peer.address}: ${cmd?.line.trim()} - ${text}`);
        if (healthy.get(peer) !== true) log(`lookupd ${peer.address}: registered`);
        healthy.set(peer, true);
      },
      (err: Error) => {
        if (healthy.get(peer) !== false) log(`lookupd ${peer.address}: ${err.message} (retried at the next change or PING)`);
        healthy.set(peer, false);
      },
    );
  };

  for (const peer of peers) issue(peer, undefined);
  const unwatch = engine.watch((event: TopologyEvent) => {
    const cmd = registrationCommand(event);
    for (const peer of peers) issue(peer, cmd);
  });
  const ping = setInterval(() => {
    for (const peer of peers) issue(peer, { line: 'PING\n' });
  }, options.pingIntervalMs ?? 15_000);
  ping.unref();

  return {
    async close() {
      unwatch();
      clearInterval(ping);
      await Promise.all(peers.map((p) => p.close()));
    },
  };
}

function registrationCommand(event: TopologyEvent): LookupCommand {
  const verb = event.removed ? 'UNREGISTER' : 'REGISTER';
  return { line: event.channel === undefined ? `${verb} ${event.topic}\n` : `${verb} ${event.topic} ${event.channel}\n` };
}

/** nsqd's connect callback: a topic without channels registers alone, otherwise once per channel. */
function currentRegistrations(engine: ServerEngine): LookupCommand[] {
  const stats = engine.stats();
  const topics: TopicStats[] = Array.isArray(stats) ? stats : stats.topics;
  const out: LookupCommand[] = [];
  for (const t of topics) {
    if (t.channels.length === 0) out.push({ line: `REGISTER ${t.topic_name}\n` });
    for (const c of t.channels) out.push({ line: `REGISTER ${t.topic_name} ${c.channel_name}\n` });
  }
  return out;
}

function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

/** A broker bound to one address is reachable there; bound to all, lookupd hands out the hostname as nsqd does. */
function defaultBroadcast(host: string): string {
  return host === '' || host === '0.0.0.0' || host === '::' ? hostname() : host;
}
