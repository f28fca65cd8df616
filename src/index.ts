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
export type { SubscribeOptions, Subscription, Transport, TransportFeatures } from './core/transport.ts';
