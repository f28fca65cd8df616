/**
 * `conveyor-pipelines/engine`: the embedded broker with NSQ semantics, for the memory:// and embedded://
 * transports, the NSQ server, and applications that want the broker itself.
 */
export { DiscardBackend, MemoryBackend } from './backend.ts';
export { CompactMemoryBackend } from './compact-backend.ts';
export type { Channel } from './channel.ts';
export { Engine } from './engine.ts';
export { isEphemeralName, isValidName } from './names.ts';
export {
  DEFAULT_MAX_MSG_SIZE,
  DEFAULT_MAX_MSG_TIMEOUT_MS,
  DEFAULT_MAX_RDY_COUNT,
  DEFAULT_MAX_REQ_TIMEOUT_MS,
  DEFAULT_MEM_QUEUE_SIZE,
  DEFAULT_MSG_TIMEOUT_MS,
  DEFAULT_SCAN_INTERVAL_MS,
  type EngineOptions,
  type ResolvedEngineOptions,
  resolveEngineOptions,
} from './options.ts';
export type { Topic } from './topic.ts';
export type {
  BackendFactory,
  BackendQueue,
  ChannelConsumer,
  ChannelStats,
  ConsumerInfo,
  ConsumerOptions,
  ConsumerSink,
  EngineInput,
  EngineMessage,
  PeekResult,
  TopicStats,
} from './types.ts';
