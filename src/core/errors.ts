/**
 * Every error Conveyor raises is a {@link ConveyorError} with a stable `code` from
 * {@link ERROR_CODES}. `retryable` is what the retry middleware reads: a non-retryable
 * error sends a message straight to dead-letter (as bullmq's `UnrecoverableError`).
 * Foreign error text (broker clients, drivers) is parsed once, at the boundary that
 * catches it, and wrapped with `cause`.
 */

/** The catalogue: code → what it means. Every code is documented (and tested to be). */
export const ERROR_CODES = {
  ERR_DECODE: 'The message body could not be decoded by its codec (malformed or hostile bytes).',
  ERR_ENCODE: 'A value could not be encoded by the chosen codec.',
  ERR_SCHEMA: 'A value does not match its message schema.',
  ERR_VERSION: 'The message carries a schema version this code does not know (newer than defined).',
  ERR_UPGRADE: 'Upgrading an older message version failed.',
  ERR_UNKNOWN_CONTENT_TYPE: 'No codec is registered for the content-type header.',
  ERR_TOO_LARGE: 'A message or body is larger than the configured limit.',
  ERR_BAD_URL: 'A connection URL is malformed or names an unknown scheme.',
  ERR_BAD_OPTIONS: 'Options failed validation; the message lists every bad path.',
  ERR_BAD_NAME: 'A topic or channel name breaks the naming rules.',
  ERR_MISSING_DEPENDENCY: 'An optional peer dependency is needed for this feature and is not installed.',
  ERR_TRANSPORT: 'The transport failed to talk to its broker (connection, protocol or confirm failure).',
  ERR_NOT_CONFIRMED: 'The broker did not confirm a publish.',
  ERR_CLOSED: 'The transport, app or subscription is closed.',
  ERR_TIMEOUT: 'An operation or a handler ran past its deadline.',
  ERR_HANDLER: 'A message handler failed.',
  ERR_PERMANENT: 'A handler declared the failure permanent: no retry, straight to dead-letter.',
  ERR_BACKPRESSURE: 'The system is at capacity; try again later.',
  ERR_PROTOCOL: 'A peer sent bytes that break the wire protocol.',
  ERR_NOT_FOUND: 'A topic, channel or message does not exist.',
  ERR_SINK: 'A sink failed to commit a batch.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ConveyorErrorOptions {
  cause?: unknown;
  /** Whether retrying the same work may succeed. Defaults per code (see {@link defaultRetryable}). */
  retryable?: boolean;
  /** Extra structured facts (limits, names, paths) for logs and dead-letter headers. */
  details?: Record<string, unknown>;
}

const PERMANENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_DECODE',
  'ERR_ENCODE',
  'ERR_SCHEMA',
  'ERR_VERSION',
  'ERR_UPGRADE',
  'ERR_UNKNOWN_CONTENT_TYPE',
  'ERR_TOO_LARGE',
  'ERR_BAD_URL',
  'ERR_BAD_OPTIONS',
  'ERR_BAD_NAME',
  'ERR_MISSING_DEPENDENCY',
  'ERR_PERMANENT',
  'ERR_PROTOCOL',
]);

/** Bad input and bad configuration never get better by retrying; broker and sink trouble may. */
export function defaultRetryable(code: ErrorCode): boolean {
  return !PERMANENT.has(code);
}

/**
 * Marks Conveyor's errors across copies of the package: a worker loaded by a global `conveyor`
 * CLI and the project's own install are two module instances, and `instanceof` alone would let a
 * PermanentError of one copy be retried as an unknown error by the other.
 */
const ERROR_BRAND = Symbol.for('conveyor-pipelines.error');

export class ConveyorError extends Error {
  /** Same class, or a ConveyorError from another copy of this package (see ERROR_BRAND). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class instanceof asks about, a subclass included
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    if (typeof value !== 'object' || value === null || (value as Record<symbol, unknown>)[ERROR_BRAND] !== true) return false;
    // Another copy's subclass matches by its code (PermanentError ↔ ERR_PERMANENT).
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class instanceof asks about, a subclass included
    return this === ConveyorError || (this === PermanentError && (value as ConveyorError).code === 'ERR_PERMANENT');
  }

  override name = 'ConveyorError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ConveyorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? defaultRetryable(code);
    this.details = options.details;
    Object.defineProperty(this, ERROR_BRAND, { value: true });
  }
}

/**
 * Throw this from a handler when retrying cannot help: the message goes straight to
 * dead-letter with the reason.
 *
 * @example
 * if (!order.customerId) throw new PermanentError('order without customer');
 */
export class PermanentError extends ConveyorError {
  override name = 'PermanentError';
  constructor(message: string, options: Omit<ConveyorErrorOptions, 'retryable'> = {}) {
    super('ERR_PERMANENT', message, { ...options, retryable: false });
  }
}

export function isConveyorError(err: unknown): err is ConveyorError {
  return err instanceof ConveyorError;
}

/** Whether the retry middleware should try again after `err`. Unknown errors are retryable. */
export function isRetryable(err: unknown): boolean {
  return err instanceof ConveyorError ? err.retryable : true;
}

/** The error's code, or ERR_HANDLER for anything that is not ours (for dead-letter headers). */
export function errorCode(err: unknown): ErrorCode {
  return err instanceof ConveyorError ? err.code : 'ERR_HANDLER';
}
