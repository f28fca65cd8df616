/**
 * The dashboard over an engine in this process: `conveyor broker`, `npm start`, and apps on
 * memory:// or embedded://. Figures come from the engine's own stats (the same ones /stats and
 * `conveyor stats` print), consumers from the channels, names of NSQ clients from the server.
 */
import { ConveyorError } from '../core/errors.ts';
import type { Headers } from '../core/message.ts';
import type { Transport } from '../core/transport.ts';
import type { Engine } from '../engine/engine.ts';
import type { ClientState } from '../server/tcp/client.ts';
import { MemoryTransport } from '../transports/memory/transport.ts';
import { openMessage, showBody } from './decode.ts';
import { type DeadLetter, DLQ_CHANNEL, deadTopicOf, describe, listDeadLetters } from './dlq.ts';
import type { Action, ChannelView, ClientView, DashboardSource, PeekedMessage, TopicView } from './source.ts';

export interface EngineSourceOptions {
  engine: Engine;
  /** The NSQ TCP clients of a broker serving this engine, to name its consumers. */
  clients?: () => Iterable<ClientState>;
}

export function engineSource(options: EngineSourceOptions): DashboardSource {
  const { engine } = options;
  let transport: MemoryTransport | undefined;

  const topic = (name: string) => {
    const t = engine.getTopic(name);
    if (!t) throw new ConveyorError('ERR_BAD_NAME', `no topic ${name}`);
    return t;
  };
  const channel = (topicName: string, name: string) => {
    const c = topic(topicName).getChannel(name);
    if (!c) throw new ConveyorError('ERR_BAD_NAME', `no channel ${topicName}/${name}`);
    return c;
  };

  return {
    kind: 'embedded',
    canPeek: true,
    async topics(): Promise<TopicView[]> {
      const named = new Map<number, ClientState>();
      for (const client of options.clients?.() ?? []) if (client.consumer) named.set(client.consumer.id, client);
      return engine.topics().map((t) => {
        const s = t.stats();
        const channels: ChannelView[] = t.channels().map((c) => {
          const cs = c.stats();
          const clients: ClientView[] = c.consumers().map((k) => {
            const tcp = named.get(k.id);
            if (!tcp) return { id: `in-process #${k.id}`, ready: k.ready, inFlight: k.inFlight };
            return {
              id: tcp.clientId,
              host: tcp.hostname,
              ready: tcp.readyCount,
              inFlight: k.inFlight,
              messages: tcp.messageCount,
              finished: tcp.finishCount,
              requeued: tcp.requeueCount,
            };
          });
          return {
            name: cs.channel_name,
            depth: cs.depth,
            inFlight: cs.in_flight_count,
            deferred: cs.deferred_count,
            requeued: cs.requeue_count,
            timedOut: cs.timeout_count,
            messages: cs.message_count,
            paused: cs.paused,
            clients,
          };
        });
        return { name: s.topic_name, depth: s.depth, messages: s.message_count, paused: s.paused, channels };
      });
    },
    async act(action: Action, topicName: string, channelName?: string): Promise<void> {
      if (channelName === undefined) {
        if (action === 'delete') await engine.deleteTopic(topic(topicName).name);
        else topic(topicName)[action]();
        return;
      }
      if (action === 'delete') await topic(topicName).deleteChannel(channel(topicName, channelName).name);
      else channel(topicName, channelName)[action]();
    },
    async publish(topicName: string, body: Uint8Array, headers: Headers): Promise<void> {
      const t = engine.topic(topicName);
      t.publish([{ body, headers, key: headers['conveyor-id'] }]);
      await t.sync();
    },
    async peek(topicName: string, channelName: string, max: number) {
      const { messages, partial } = channel(topicName, channelName).peek(max);
      return { messages: messages.map(peeked), partial };
    },
    async transport(): Promise<Transport> {
      // Over the same engine, closed with nothing: the engine belongs to whoever made it.
      transport ??= new MemoryTransport(engine);
      return transport;
    },
    /**
     * Dead letters by peeking, so looking changes nothing: the `dlq` channel when it exists, else
     * what the dead-letter topic keeps for its first channel.
     */
    async deadLetters(topicName: string, max: number): Promise<DeadLetter[]> {
      const deadTopic = deadTopicOf(topicName);
      const t = engine.getTopic(deadTopic);
      if (!t) return [];
      const dlq = t.getChannel(DLQ_CHANNEL);
      // Without a dlq channel but with others, the topic keeps nothing: create it to collect from now on.
      const source = dlq ?? (t.channels().length === 0 ? t : t.channel(DLQ_CHANNEL));
      const peeked = source.peek(max);
      if (peeked.partial && peeked.messages.length < max) {
        // Past what the disk queue lets us peek at (a --durable broker keeps nothing in memory):
        // take and give back through the transport, which reads the disk.
        return listDeadLetters(await this.transport(), topicName, { limit: max, idleMs: 50, firstWaitMs: 200 });
      }
      return peeked.messages.map((m) => {
        const opened = openMessage(m.body, m.headers);
        return describe(deadTopic, m.key ?? opened.id ?? m.id, opened.headers, opened.body, m.timestamp);
      });
    },
    async close(): Promise<void> {
      await transport?.close();
    },
  };
}

function peeked(m: { id: string; key: string | undefined; attempts: number; timestamp: number; body: Uint8Array; headers: Headers | undefined }): PeekedMessage {
  const opened = openMessage(m.body, m.headers);
  return { id: m.key ?? opened.id ?? m.id, attempts: m.attempts, timestamp: m.timestamp, headers: { ...opened.headers }, body: showBody(opened.body, opened.headers) };
}
