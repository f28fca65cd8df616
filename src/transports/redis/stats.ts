/**
 * `stats()` for redis://: every Conveyor stream (SCAN for `<prefix>*` streams, or the named
 * topics), its length (XLEN) and, per consumer group — a channel — its consumers, pending
 * entries (delivered, unacked) and lag (entries not yet delivered; Redis ≥ 7, absent when Redis
 * cannot compute it) from XINFO GROUPS. `#ephemeral` topics are Pub/Sub, which keeps nothing.
 */
import type { ChannelStats, StatsSelection, TransportStats } from '../../core/transport.ts';
import { type RedisOptions, streamKey } from './options.ts';

type Client = import('ioredis').Redis;

export async function redisStats(client: Client, options: RedisOptions, select: StatsSelection[] = []): Promise<TransportStats> {
  const wanted: StatsSelection[] = select.length > 0 ? select : (await conveyorStreams(client, options)).map((topic) => ({ topic }));
  const topics: TransportStats['topics'] = [];
  for (const { topic, channels } of wanted) {
    if (topic.endsWith('#ephemeral')) {
      topics.push({ topic, channels: [] });
      continue;
    }
    const key = streamKey(options, topic);
    const [messages, groups] = await Promise.all([client.xlen(key), (client.xinfo('GROUPS', key) as Promise<unknown[][]>).catch(() => [])]);
    const rows: ChannelStats[] = groups.map(pairs).map((g) => ({
      channel: String(g.name),
      ...(typeof g.lag === 'number' ? { depth: g.lag, lag: g.lag } : {}),
      inFlight: Number(g.pending),
      consumers: Number(g.consumers),
    }));
    topics.push({ topic, messages, channels: channels ? rows.filter((r) => channels.includes(r.channel)) : rows });
  }
  return { kind: 'redis', topics, note: '#ephemeral topics are Redis Pub/Sub, which holds no messages to count' };
}

/** The topics whose streams exist: `<prefix><topic>` keys of type stream, minus retry streams. */
async function conveyorStreams(client: Client, options: RedisOptions): Promise<string[]> {
  const found = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${options.prefix}*`, 'COUNT', 1000, 'TYPE', 'stream');
    cursor = next;
    for (const key of keys) if (!key.includes(':retry:')) found.add(key.slice(options.prefix.length));
  } while (cursor !== '0');
  return [...found].sort();
}

/** XINFO's flat [field, value, ...] reply as an object. */
function pairs(reply: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1];
  return out;
}
