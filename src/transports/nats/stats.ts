/**
 * `stats()` for nats://: JetStream's own figures. Every Conveyor stream (`<streamPrefix>…`, or
 * the named topics) with its message count, and each durable consumer — a channel — with
 * `num_pending` (not yet delivered), `num_ack_pending` (delivered, unacked) and `num_waiting`
 * (pull requests waiting: a live consumer has at least one). JetStream does not count the
 * clients behind a pull consumer, so `consumers` is not reported.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { ConveyorError } from '../../core/errors.ts';
import type { ChannelStats, StatsSelection, TransportStats } from '../../core/transport.ts';
import { consumerName, type NatsOptions, streamName } from './options.ts';

export async function natsStats(jsm: JetStreamManager, options: NatsOptions, select: StatsSelection[] = []): Promise<TransportStats> {
  const wanted = select.length > 0 ? select : await conveyorTopics(jsm, options);
  const topics: TransportStats['topics'] = [];
  for (const { topic, channels } of wanted) {
    const stream = streamName(options, topic);
    const info = await jsm.streams.info(stream).catch((cause: Error) => {
      throw new ConveyorError('ERR_NOT_FOUND', `nats://: no stream ${stream} for topic ${topic}: ${cause.message}`, { cause });
    });
    const rows: ChannelStats[] = [];
    for await (const c of jsm.consumers.list(stream)) {
      const channel = c.name.replaceAll('~', '.');
      if (channels && !channels.some((name) => consumerName(name) === c.name)) continue;
      rows.push({ channel, depth: c.num_pending, inFlight: c.num_ack_pending, lag: c.num_pending });
    }
    topics.push({ topic, messages: info.state.messages, channels: rows });
  }
  return { kind: 'nats', topics, note: 'JetStream does not count the clients behind a pull consumer' };
}

async function conveyorTopics(jsm: JetStreamManager, options: NatsOptions): Promise<StatsSelection[]> {
  const out: StatsSelection[] = [];
  for await (const s of jsm.streams.list()) {
    const name = s.config.name;
    if (options.streamPrefix && !name.startsWith(options.streamPrefix)) continue;
    out.push({ topic: name.slice(options.streamPrefix.length).replaceAll('~', '.') });
  }
  return out.sort((a, b) => a.topic.localeCompare(b.topic));
}
