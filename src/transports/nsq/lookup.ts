import { ConveyorError } from '../../core/errors.ts';
import type { HostPort } from './options.ts';

/**
 * nsqlookupd's HTTP API. `/lookup?topic=` lists the nsqd that hold a topic; `/nodes` lists every
 * nsqd. Both answers come in two shapes: nsqlookupd ≥ 1.0 sends the object itself, older ones
 * wrap it as `{status_code, status_txt, data}`.
 */
interface Producer {
  broadcast_address?: string;
  hostname?: string;
  tcp_port?: number;
}

async function get(lookupd: HostPort, path: string, timeoutMs: number): Promise<Producer[]> {
  const url = `http://${lookupd.host.includes(':') ? `[${lookupd.host}]` : lookupd.host}:${lookupd.port}${path}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/vnd.nsq; version=1.0' } });
  } catch (cause) {
    throw new ConveyorError('ERR_TRANSPORT', `nsqlookup: ${url} did not answer: ${(cause as Error).message}`, { cause });
  }
  const text = await res.text();
  // An unknown topic is a 404 with TOPIC_NOT_FOUND: no producers yet, not an error.
  if (res.status === 404) return [];
  if (!res.ok) throw new ConveyorError('ERR_TRANSPORT', `nsqlookup: ${url} answered ${res.status}: ${text.slice(0, 200)}`);
  let json: { producers?: Producer[]; data?: { producers?: Producer[] } };
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ConveyorError('ERR_PROTOCOL', `nsqlookup: ${url} answered with something that is not JSON`, { cause });
  }
  const producers = json.producers ?? json.data?.producers;
  return Array.isArray(producers) ? producers : [];
}

function toTargets(producers: Producer[]): HostPort[] {
  const out: HostPort[] = [];
  for (const p of producers) {
    const host = p.broadcast_address || p.hostname;
    if (typeof host === 'string' && host && Number.isInteger(p.tcp_port)) out.push({ host, port: p.tcp_port! });
  }
  return out;
}

/** The nsqd that hold `topic`, merged over every nsqlookupd that answered (one failing is fine). */
export async function lookupTopic(lookupds: readonly HostPort[], topic: string, timeoutMs: number): Promise<HostPort[]> {
  return merge(await Promise.allSettled(lookupds.map((l) => get(l, `/lookup?topic=${encodeURIComponent(topic)}`, timeoutMs))));
}

/** Every nsqd the nsqlookupds know (where to publish a topic no nsqd holds yet). */
export async function lookupNodes(lookupds: readonly HostPort[], timeoutMs: number): Promise<HostPort[]> {
  return merge(await Promise.allSettled(lookupds.map((l) => get(l, '/nodes', timeoutMs))));
}

function merge(results: PromiseSettledResult<Producer[]>[]): HostPort[] {
  const seen = new Map<string, HostPort>();
  let failure: unknown;
  let answered = false;
  for (const r of results) {
    if (r.status === 'rejected') {
      failure ??= r.reason;
      continue;
    }
    answered = true;
    for (const t of toTargets(r.value)) seen.set(`${t.host}:${t.port}`, t);
  }
  if (!answered) throw failure;
  return [...seen.values()];
}
