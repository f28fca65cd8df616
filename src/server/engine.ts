/**
 * What the server needs from the engine, written structurally so that the protocol code depends
 * on behaviour, not on the engine's classes (src/engine/types.ts is the contract it follows).
 */
import type {
  ChannelConsumer,
  ChannelStats,
  ConsumerOptions,
  ConsumerSink,
  EngineInput,
  TopicStats,
  TopologyEvent,
} from '../engine/types.ts';

export interface ServerChannel {
  subscribe(sink: ConsumerSink, options?: ConsumerOptions): ChannelConsumer;
  pause(): void;
  unpause(): void;
  empty(): void | Promise<void>;
}

export interface ServerTopic {
  /** Synchronous, all-or-nothing; throws ConveyorError (ERR_TOO_LARGE, ERR_BAD_NAME, ERR_CLOSED). */
  publish(inputs: EngineInput[]): void;
  /** Resolves once everything published so far is as durable as the engine promises. */
  sync(): Promise<void>;
  channel(name: string): ServerChannel;
  getChannel(name: string): ServerChannel | undefined;
  deleteChannel(name: string): unknown;
  pause(): void;
  unpause(): void;
  empty(): void | Promise<void>;
}

export interface ServerEngine {
  topic(name: string): ServerTopic;
  getTopic(name: string): ServerTopic | undefined;
  deleteTopic(name: string): unknown;
  stats(): TopicStats[] | { topics: TopicStats[] };
  close(): Promise<void>;
  /** Topics and channels as they come and go; needed to register with nsqlookupd. */
  watch?(listener: (event: TopologyEvent) => void): () => void;
}

export type { ChannelConsumer, ChannelStats, ConsumerSink, EngineInput, TopicStats, TopologyEvent };
