/**
 * Conveyor's public API. Names are listed one by one: nothing internal leaks through `export *`.
 */
export { type ConnectOptions, connect } from './connect.ts';
export {
  ConveyorError,
  type ConveyorErrorOptions,
  ERROR_CODES,
  type ErrorCode,
  isConveyorError,
  isRetryable,
  PermanentError,
} from './core/errors.ts';
export { type Delivery, HEADER, type Headers, type OutgoingMessage } from './core/message.ts';
export type { Binding, SubscribeOptions, Subscription, Transport, TransportFeatures } from './core/transport.ts';
export { type Codec, codecFor, codecs, cborCodec, type DecodeLimits, jsonCodec, msgpackCodec, rawCodec } from './core/codecs/index.ts';
export { newId } from './core/id.ts';
export { bytesMessage, defineMessage, type MessageDefinition, type MessageOptions } from './core/schema.ts';
export {
  App,
  type AppEvents,
  type AppOptions,
  app,
  type BackoffOptions,
  type BatchContext,
  type BatchHandler,
  type BatchMessage,
  type BatchOptions,
  compose,
  type ConsumeBatchOptions,
  type ConsumeOptions,
  type Context,
  type DedupStore,
  deadLetter,
  dedup,
  type Handler,
  MemoryDedupStore,
  type MessageHandler,
  type Middleware,
  type PublishOptions,
  retry,
  type RetryConfig,
  type Work,
} from './runtime/index.ts';
export { WorkerPool, type WorkerPoolOptions } from './runtime/pool/index.ts';
