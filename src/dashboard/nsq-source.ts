/**
 * The dashboard over an nsqd (or `conveyor broker` in another process) through its HTTP API:
 * /stats for the figures and clients, the topic/channel actions, /pub for publishing. nsqd
 * cannot peek (nsq#375), so this source does not; dead letters go through an nsq:// transport.
 */
import { connect } from '../connect.ts';
import { encodeEnvelope } from '../core/envelope.ts';
import { ConveyorError } from '../core/errors.ts';
import type { Headers } from '../core/message.ts';
import type { Transport } from '../core/transport.ts';
import type { Action, DashboardSource, TopicView } from './source.ts';

export interface NsqSourceOptions {
  /** nsqd's HTTP address, "http://127.0.0.1:4151". */
  http: string;
  /** The transport URL dead letters are handled through. @default nsq:// at the HTTP port − 1 */
  url?: string;
  /** Per request, ms. @default 5000 */
  timeoutMs?: number;
}

interface NsqStats {
  topics: Array<{
    topic_name: string;
    depth: number;
    message_count: number;
    paused: boolean;
    channels: Array<{
      channel_name: string;
      depth: number;
      in_flight_count: number;
      deferred_count: number;
      requeue_count: number;
      timeout_count: number;
      message_count: number;
      paused: boolean;
      clients?: Array<{ client_id: string; hostname: string; ready_count: number; in_flight_count: number; message_count: number; finish_count: number; requeue_count: number }>;
    }>;
  }>;
}

export function nsqSource(options: NsqSourceOptions): DashboardSource {
  const base = options.http.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 5000;
  let transport: Promise<Transport> | undefined;

  async function request(method: string, path: string, body?: Uint8Array): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, { method, body, signal: AbortSignal.timeout(timeoutMs) });
    } catch (cause) {
      throw new ConveyorError('ERR_TRANSPORT', `nsqd at ${base} did not answer ${path}: ${(cause as Error).message}`, { cause });
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      const code = res.status === 404 ? 'ERR_BAD_NAME' : res.status >= 500 ? 'ERR_TRANSPORT' : 'ERR_BAD_OPTIONS';
      throw new ConveyorError(code, `nsqd ${method} ${path}: ${res.status} ${text}`);
    }
    return res;
  }

  return {
    kind: 'nsq',
    canPeek: false,
    async topics(): Promise<TopicView[]> {
      const stats = (await (await request('GET', '/stats?format=json&include_clients=true&include_mem=false')).json()) as NsqStats;
      return (stats.topics ?? []).map((t) => ({
        name: t.topic_name,
        depth: t.depth,
        messages: t.message_count,
        paused: t.paused,
        channels: t.channels.map((c) => ({
          name: c.channel_name,
          depth: c.depth,
          inFlight: c.in_flight_count,
          deferred: c.deferred_count,
          requeued: c.requeue_count,
          timedOut: c.timeout_count,
          messages: c.message_count,
          paused: c.paused,
          clients: (c.clients ?? []).map((k) => ({
            id: k.client_id,
            host: k.hostname,
            ready: k.ready_count,
            inFlight: k.in_flight_count,
            messages: k.message_count,
            finished: k.finish_count,
            requeued: k.requeue_count,
          })),
        })),
      }));
    },
    async act(action: Action, topic: string, channel?: string): Promise<void> {
      const q = new URLSearchParams({ topic, ...(channel === undefined ? {} : { channel }) });
      await request('POST', `/${channel === undefined ? 'topic' : 'channel'}/${action}?${q}`);
    },
    async publish(topic: string, body: Uint8Array, headers: Headers): Promise<void> {
      // The envelope carries the headers (content-type) as Conveyor's nsq client does.
      await request('POST', `/pub?${new URLSearchParams({ topic })}`, encodeEnvelope(body, headers));
    },
    async peek(): Promise<never> {
      throw new ConveyorError('ERR_BAD_OPTIONS', 'nsqd cannot peek at a channel without consuming it (nsq#375); the embedded engine can');
    },
    transport(): Promise<Transport> {
      transport ??= connect(options.url ?? `nsq://${new URL(base).hostname}:${Number(new URL(base).port || 4151) - 1}`);
      transport.catch(() => (transport = undefined));
      return transport;
    },
    async close(): Promise<void> {
      const t = await transport?.catch(() => undefined);
      await t?.close();
    },
  };
}
