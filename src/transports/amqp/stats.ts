/**
 * `stats()` for amqp://: each named channel's queue, read with a passive declare (`queue.declare`
 * with passive=true, amqplib's checkQueue), which answers the queue's ready messages and its
 * consumers. AMQP has no way to list queues, so channels must be named (the management plugin's
 * HTTP API can list them, but it is a plugin, often off, on another port); nor does the passive
 * declare count unacked messages.
 */
import type { ChannelModel } from 'amqplib';
import { ConveyorError } from '../../core/errors.ts';
import type { ChannelStats, StatsSelection, TransportStats } from '../../core/transport.ts';
import { type AmqpOptions, channelSource } from './options.ts';

export async function amqpStats(connection: ChannelModel | undefined, options: AmqpOptions, select: StatsSelection[] = []): Promise<TransportStats> {
  const unnamed = select.length === 0 ? ['(none)'] : select.filter((s) => !s.channels?.length).map((s) => s.topic);
  if (unnamed.length > 0) {
    throw new ConveyorError(
      'ERR_BAD_OPTIONS',
      `amqp:// cannot list queues over AMQP: name each channel as topic:channel (e.g. events:archive); no channel named for ${unnamed.join(', ')}`,
    );
  }
  if (!connection) throw new ConveyorError('ERR_TRANSPORT', 'amqp://: not connected to RabbitMQ', { retryable: true });
  const topics: TransportStats['topics'] = [];
  for (const { topic, channels } of select) {
    const rows: ChannelStats[] = [];
    for (const channel of channels!) {
      rows.push({ channel, ...(await checkQueue(connection, channelSource(options, topic, channel).queue, topic, channel)) });
    }
    topics.push({ topic, channels: rows });
  }
  return { kind: 'amqp', topics, note: 'RabbitMQ answers ready messages and consumers per queue; unacked counts need its management plugin' };
}

async function checkQueue(connection: ChannelModel, queue: string, topic: string, channel: string): Promise<Omit<ChannelStats, 'channel'>> {
  // A passive declare of a missing queue closes its AMQP channel with 404: one channel per check.
  const ch = await connection.createChannel();
  ch.on('error', () => {});
  try {
    const q = await ch.checkQueue(queue);
    return { depth: q.messageCount, consumers: q.consumerCount };
  } catch (cause) {
    const code = (cause as { code?: number }).code;
    if (code === 404) throw new ConveyorError('ERR_NOT_FOUND', `amqp://: no queue ${JSON.stringify(queue)}: channel ${channel} of topic ${topic} was never subscribed`, { cause });
    throw new ConveyorError('ERR_TRANSPORT', `amqp://: cannot check queue ${JSON.stringify(queue)}: ${(cause as Error).message}`, { cause });
  } finally {
    await ch.close().catch(() => {});
  }
}
