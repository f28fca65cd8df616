/**
 * /stats in nsqd's shape (nsqd/stats.go, http.go doStats/printStats): the engine's topic and
 * channel figures, with the TCP clients of each channel and the publishing clients ("producers")
 * added from the server's connections.
 */
import type { ChannelStats, ServerEngine, TopicStats } from '../engine.ts';
import { SERVER_VERSION } from '../options.ts';
import type { ClientState } from '../tcp/client.ts';

export interface StatsQuery {
  topic: string | undefined;
  channel: string | undefined;
  includeClients: boolean;
  includeMem: boolean;
}

const NO_LATENCY = Object.freeze({ count: 0, percentiles: null });

export function collectStats(
  engine: ServerEngine,
  clients: Iterable<ClientState>,
  startTime: number,
  query: StatsQuery,
): Record<string, unknown> {
  const raw = engine.stats();
  const topics: TopicStats[] = Array.isArray(raw) ? raw : raw.topics;
  const byChannel = new Map<string, Record<string, unknown>[]>();
  const producers: Record<string, unknown>[] = [];
  for (const client of clients) {
    if (client.pubCounts.size > 0) producers.push(client.stats());
    if (client.topicName === undefined || client.channelName === undefined || !query.includeClients) continue;
    const key = `${client.topicName}\0${client.channelName}`;
    let list = byChannel.get(key);
    if (!list) byChannel.set(key, (list = []));
    list.push(client.stats());
  }
  const shaped = topics
    .filter((t) => query.topic === undefined || t.topic_name === query.topic)
    .sort((a, b) => (a.topic_name < b.topic_name ? -1 : a.topic_name > b.topic_name ? 1 : 0))
    .map((t) => ({
      topic_name: t.topic_name,
      channels: t.channels
        .filter((c) => query.channel === undefined || c.channel_name === query.channel)
        .sort((a, b) => (a.channel_name < b.channel_name ? -1 : a.channel_name > b.channel_name ? 1 : 0))
        .map((c) => shapeChannel(c, byChannel.get(`${t.topic_name}\0${c.channel_name}`) ?? [])),
      depth: t.depth,
      backend_depth: t.backend_depth,
      message_count: t.message_count,
      message_bytes: t.message_bytes,
      paused: t.paused,
      e2e_processing_latency: NO_LATENCY,
    }));
  const out: Record<string, unknown> = {
    version: SERVER_VERSION,
    health: 'OK',
    start_time: Math.floor(startTime / 1000),
    topics: shaped,
  };
  if (query.includeMem) out.memory = memoryStats();
  out.producers = producers;
  return out;
}

function shapeChannel(c: ChannelStats, clients: Record<string, unknown>[]): Record<string, unknown> {
  return {
    channel_name: c.channel_name,
    depth: c.depth,
    backend_depth: c.backend_depth,
    in_flight_count: c.in_flight_count,
    deferred_count: c.deferred_count,
    message_count: c.message_count,
    requeue_count: c.requeue_count,
    timeout_count: c.timeout_count,
    client_count: c.client_count,
    clients,
    paused: c.paused,
    e2e_processing_latency: NO_LATENCY,
  };
}

/** nsqd reports Go runtime memory; these are V8's nearest equivalents (0 where V8 has none). */
function memoryStats(): Record<string, number> {
  const m = process.memoryUsage();
  return {
    heap_objects: 0,
    heap_idle_bytes: Math.max(0, m.heapTotal - m.heapUsed),
    heap_in_use_bytes: m.heapUsed,
    heap_released_bytes: 0,
    gc_pause_usec_100: 0,
    gc_pause_usec_99: 0,
    gc_pause_usec_95: 0,
    next_gc_bytes: 0,
    gc_total_runs: 0,
  };
}

/** The plain-text /stats, laid out as nsqd's printStats. */
export function formatStats(stats: Record<string, unknown>, startTime: number): string {
  const lines: string[] = [];
  lines.push(`nsqd v${SERVER_VERSION} (conveyor)`);
  lines.push(`start_time ${new Date(startTime).toISOString()}`);
  lines.push(`uptime ${((Date.now() - startTime) / 1000).toFixed(3)}s`);
  lines.push('', `Health: ${stats.health}`);
  const memory = stats.memory as Record<string, number> | undefined;
  if (memory) {
    lines.push('', 'Memory:');
    for (const [key, value] of Object.entries(memory)) lines.push(`   ${key.padEnd(25)}\t${value}`);
  }
  const topics = stats.topics as Array<Record<string, any>>;
  if (topics.length === 0) lines.push('', 'Topics: None');
  else lines.push('', 'Topics:');
  for (const t of topics) {
    lines.push(
      `${t.paused ? '*P ' : '   '}[${String(t.topic_name).padEnd(15)}] depth: ${pad(t.depth, 5)} be-depth: ${pad(t.backend_depth, 5)} msgs: ${pad(t.message_count, 8)} e2e%: `,
    );
    for (const c of t.channels as Array<Record<string, any>>) {
      lines.push(
        `${c.paused ? '   *P ' : '      '}[${String(c.channel_name).padEnd(25)}] depth: ${pad(c.depth, 5)} be-depth: ${pad(c.backend_depth, 5)} inflt: ${pad(c.in_flight_count, 4)} def: ${pad(c.deferred_count, 4)} re-q: ${pad(c.requeue_count, 5)} timeout: ${pad(c.timeout_count, 5)} msgs: ${pad(c.message_count, 8)} e2e%: `,
      );
      for (const client of c.clients as Array<Record<string, any>>) {
        lines.push(
          `        [V2 ${client.client_id}] state: ${client.state} inflt: ${pad(client.in_flight_count, 4)} rdy: ${pad(client.ready_count, 4)} fin: ${pad(client.finish_count, 8)} re-q: ${pad(client.requeue_count, 8)} msgs: ${pad(client.message_count, 8)} connected: ${client.connect_ts}`,
        );
      }
    }
  }
  const producers = stats.producers as Array<Record<string, any>>;
  if (producers.length === 0) lines.push('', 'Producers: None');
  else {
    lines.push('', 'Producers:');
    for (const p of producers) lines.push(`   [V2 ${p.client_id}] ${p.remote_address} connected: ${p.connect_ts}`);
  }
  return `${lines.join('\n')}\n`;
}

function pad(value: unknown, width: number): string {
  return String(value).padEnd(width);
}
