/**
 * `conveyor stats <url>`: what a broker reports about its topics and channels, as a table.
 *
 * It takes the URLs `pub` and `tail` take. `nsq://host:4150` is read over HTTP at `host:4151`:
 * nsqd's IDENTIFY answer carries no HTTP port, so a client cannot learn it over TCP, and nsqd's
 * and `conveyor broker`'s defaults both put HTTP at the TCP port + 1; `--http HOST:PORT` says
 * otherwise. `nsqlookup://host:4161` lists every nsqd nsqlookupd knows (/nodes gives each one's
 * HTTP port) and shows each. Every other engine is asked through its transport's `stats()`
 * (src/transports/<engine>/stats.ts), with what that engine exposes and a note on what it does not.
 */
import { parseArgs } from 'node:util';
import { ConveyorError } from '../../core/errors.ts';
import { parseTransportUrl } from '../../core/url.ts';
import { inProcessOnly } from '../urls.ts';
import { engineStats } from '../engine-stats.ts';

export const summary = "show a broker's topics and channels: conveyor stats [url] [topic[:channel] ...] [--http HOST:PORT] [--json]";

const USAGE = `usage: conveyor stats [url] [topic[:channel] ...] [--http HOST:PORT] [--json]
  url      nsq://HOST:4150 (read over HTTP at the TCP port + 1, nsqd's convention),
           nsqlookup://HOST:4161 (every nsqd it knows, one table each),
           the HTTP API itself, http://HOST:4151 (default http://127.0.0.1:4151),
           or amqp://, redis://, nats://, kafka://, mqtt:// (what that engine reports)
  topic[:channel]
           only these topics (and channels); amqp:// needs them (AMQP cannot list queues)
  --http   the broker's HTTP address when it is not the TCP port + 1
  --json   the answer as JSON
`;

interface Channel {
  channel_name: string;
  depth: number;
  in_flight_count: number;
  deferred_count: number;
  message_count: number;
  requeue_count: number;
  timeout_count: number;
  client_count?: number;
  clients?: unknown[];
}
interface Topic {
  topic_name: string;
  depth: number;
  message_count: number;
  channels: Channel[];
}

/**
 * The HTTP base URL to read /stats from, or a one-line error saying why this URL has none.
 * Exported for the tests.
 */
export function statsBase(target: string, http: string | undefined): { base: string; why: string; lookup?: boolean } {
  if (http !== undefined) {
    if (!/^[^/\s]+:\d+$/.test(http)) throw new ConveyorError('ERR_BAD_OPTIONS', `--http wants HOST:PORT, got ${JSON.stringify(http)}`);
    return { base: `http://${http}`, why: '--http' };
  }
  if (/^https?:\/\//.test(target)) return { base: target.replace(/\/$/, ''), why: 'the URL' };
  const parsed = parseTransportUrl(target);
  const scheme = parsed.scheme;
  if (scheme === 'nsq') {
    const tcpPort = parsed.url.port === '' ? 4150 : Number(parsed.url.port);
    const host = parsed.url.hostname || '127.0.0.1';
    return { base: `http://${host}:${tcpPort + 1}`, why: `nsqd's convention: HTTP at the TCP port ${tcpPort} + 1; pass --http HOST:PORT if it listens elsewhere` };
  }
  if (scheme === 'nsqlookup') {
    const port = parsed.url.port === '' ? 4161 : Number(parsed.url.port);
    return { base: `http://${parsed.url.hostname || '127.0.0.1'}:${port}`, why: 'nsqlookupd', lookup: true };
  }
  const local = inProcessOnly(scheme, 'stats');
  if (local) throw local;
  throw new ConveyorError('ERR_BAD_URL', `${scheme}:// has no nsqd-style /stats over HTTP`);
}

/** The schemes read over nsqd's HTTP API; every other one is asked through its transport. */
function readsHttp(target: string): boolean {
  if (/^https?:\/\//.test(target)) return true;
  const scheme = parseTransportUrl(target).scheme;
  return scheme === 'nsq' || scheme === 'nsqlookup' || scheme === 'memory' || scheme === 'embedded';
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, http: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const url = positionals[0] ?? 'http://127.0.0.1:4151';
  if (!readsHttp(url)) {
    if (values.http !== undefined) throw new ConveyorError('ERR_BAD_OPTIONS', "--http is for nsq:// (nsqd's HTTP API), not for this engine");
    return engineStats(url, positionals.slice(1), values.json === true);
  }
  if (positionals.length > 1) throw new ConveyorError('ERR_BAD_OPTIONS', `stats of ${url} takes no topics (nsqd's /stats lists them all), got: ${positionals.slice(1).join(' ')}`);
  const target = statsBase(url, values.http);
  const nodes = target.lookup ? await lookupNodes(target.base) : [{ base: target.base, why: target.why }];
  const answers: Array<{ nsqd: string; stats: { topics?: Topic[] } }> = [];
  for (const node of nodes) answers.push({ nsqd: node.base, stats: await readStats(node.base, node.why) });
  if (values.json) {
    const out = target.lookup ? answers : answers[0]!.stats;
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  answers.forEach(({ nsqd, stats }, i) => {
    if (target.lookup) process.stdout.write(`${i === 0 ? '' : '\n'}nsqd ${nsqd}\n`);
    printTable(stats);
  });
  return 0;
}

async function readStats(base: string, why: string): Promise<{ topics?: Topic[] }> {
  const res = await fetch(`${base}/stats?format=json`, { signal: AbortSignal.timeout(5000) }).catch((cause: Error & { cause?: { code?: string } }) => {
    const reason = cause.cause?.code ?? cause.message;
    throw new ConveyorError('ERR_TRANSPORT', `cannot reach ${base}/stats (${why}): ${reason}`, { cause });
  });
  if (!res.ok) throw new ConveyorError('ERR_TRANSPORT', `${base}/stats answered ${res.status}: is that an nsqd or conveyor broker HTTP API?`);
  try {
    return (await res.json()) as { topics?: Topic[] };
  } catch (cause) {
    throw new ConveyorError('ERR_PROTOCOL', `${base}/stats did not answer JSON: is that an nsqd or conveyor broker HTTP API?`, { cause });
  }
}

interface Producer {
  broadcast_address?: string;
  hostname?: string;
  http_port?: number;
}

/** Every nsqd nsqlookupd's /nodes lists, by its HTTP address (both answer shapes, as lookup.ts). */
async function lookupNodes(lookupd: string): Promise<Array<{ base: string; why: string }>> {
  const res = await fetch(`${lookupd}/nodes`, { signal: AbortSignal.timeout(5000), headers: { accept: 'application/vnd.nsq; version=1.0' } }).catch(
    (cause: Error & { cause?: { code?: string } }) => {
      throw new ConveyorError('ERR_TRANSPORT', `cannot reach nsqlookupd at ${lookupd}/nodes: ${cause.cause?.code ?? cause.message}`, { cause });
    },
  );
  if (!res.ok) throw new ConveyorError('ERR_TRANSPORT', `${lookupd}/nodes answered ${res.status}: is that an nsqlookupd?`);
  let json: { producers?: Producer[]; data?: { producers?: Producer[] } };
  try {
    json = (await res.json()) as typeof json;
  } catch (cause) {
    throw new ConveyorError('ERR_PROTOCOL', `${lookupd}/nodes did not answer JSON: is that an nsqlookupd?`, { cause });
  }
  const nodes: Array<{ base: string; why: string }> = [];
  for (const p of json.producers ?? json.data?.producers ?? []) {
    const host = p.broadcast_address || p.hostname;
    if (!host || !Number.isInteger(p.http_port)) continue;
    nodes.push({ base: `http://${host.includes(':') ? `[${host}]` : host}:${p.http_port}`, why: `listed by nsqlookupd at ${lookupd}` });
  }
  if (nodes.length === 0) throw new ConveyorError('ERR_NOT_FOUND', `nsqlookupd at ${lookupd} knows no nsqd (its /nodes is empty)`);
  return nodes;
}

function printTable(stats: { topics?: Topic[] }): void {
  const rows = [['topic', 'channel', 'depth', 'in flight', 'deferred', 'messages', 'requeued', 'timed out', 'clients']];
  for (const t of stats.topics ?? []) {
    rows.push([t.topic_name, '', String(t.depth), '', '', String(t.message_count), '', '', '']);
    for (const c of t.channels ?? []) {
      // client_count, not clients.length: /stats lists the clients only with include_clients.
      const clients = c.client_count ?? c.clients?.length ?? 0;
      rows.push(['', c.channel_name, String(c.depth), String(c.in_flight_count), String(c.deferred_count), String(c.message_count), String(c.requeue_count), String(c.timeout_count), String(clients)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
}
