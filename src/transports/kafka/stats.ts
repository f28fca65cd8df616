/**
 * `stats()` for kafka://: per consumer group — a channel, `<topic>:<channel>` — the lag, summed
 * over partitions: the topic's high watermark minus the group's committed offset (what
 * kafka-consumer-groups.sh --describe shows), and the group's members. Per topic, the records
 * it holds (high − low watermark, summed). Without a selection, every group named like
 * Conveyor's is listed.
 */
import type { Admin } from 'kafkajs';
import { ConveyorError } from '../../core/errors.ts';
import type { ChannelStats, StatsSelection, TransportStats } from '../../core/transport.ts';
import { groupId, kafkaTopic } from './options.ts';

export async function kafkaStats(admin: Admin, select: StatsSelection[] = []): Promise<TransportStats> {
  // Listing groups is needed only where no channel is named (librdkafka's mock cluster lacks ListGroups).
  const listed = select.length === 0 || select.some((s) => !s.channels) ? await conveyorGroups(admin) : [];
  const wanted: StatsSelection[] = select.length > 0 ? select : [...new Set(listed.map((g) => g.topic))].sort().map((topic) => ({ topic }));
  const topics: TransportStats['topics'] = [];
  for (const { topic, channels } of wanted) {
    const names = channels ?? listed.filter((g) => g.topic === topic).map((g) => g.channel);
    const ends = await admin.fetchTopicOffsets(kafkaTopic(topic));
    const high = new Map(ends.map((p) => [p.partition, Number(p.high)]));
    const messages = ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    const groups = names.length ? await admin.describeGroups(names.map((c) => groupId(topic, c))).then((d) => d.groups, () => undefined) : [];
    const rows: ChannelStats[] = [];
    for (const channel of names) {
      const [committed] = await admin.fetchOffsets({ groupId: groupId(topic, channel), topics: [kafkaTopic(topic)] });
      // A partition with no commit (-1) is behind by all of it: Conveyor commits a new channel's start.
      const lag = (committed?.partitions ?? []).reduce((n, p) => n + Math.max(0, (high.get(p.partition) ?? 0) - Math.max(0, Number(p.offset))), 0);
      const members = groups?.find((g) => g.groupId === groupId(topic, channel))?.members.length;
      rows.push({ channel, depth: lag, lag, ...(groups ? { consumers: members ?? 0 } : {}) });
    }
    topics.push({ topic, messages, channels: rows });
  }
  return { kind: 'kafka', topics, note: 'Kafka does not track in-flight records: lag counts everything past the committed offset' };
}

/** Groups named `<topic>:<channel>` (groupId's form), with Kafka's `__ephemeral` read back. */
async function conveyorGroups(admin: Admin): Promise<Array<{ topic: string; channel: string }>> {
  const { groups } = await admin.listGroups().catch((cause: Error) => {
    throw new ConveyorError('ERR_TRANSPORT', `kafka://: cannot list consumer groups (${cause.message}); name the channels as topic:channel`, { cause });
  });
  const back = (name: string) => name.replace('__ephemeral', '#ephemeral');
  return groups
    .map((g) => g.groupId.split(':'))
    .filter((parts) => parts.length === 2 && parts[0] && parts[1])
    .map(([topic, channel]) => ({ topic: back(topic!), channel: back(channel!) }));
}
