/**
 * Protocol errors as nsqd's `internal/protocol/errors.go`: an `E_*` code and a description, sent
 * to the client as an error frame whose body is `"<code> <description>"`. A fatal one closes the
 * connection right after the frame (nsqd's FatalClientErr); a plain one leaves it open
 * (ClientErr: only E_FIN_FAILED, E_REQ_FAILED and E_TOUCH_FAILED in nsqd's protocol_v2.go).
 */

/** Every code this server sends (nsqd's, but E_IDENTIFY_FAILED only for a failed TLS upgrade). */
export type ProtocolErrorCode =
  | 'E_INVALID'
  | 'E_BAD_BODY'
  | 'E_BAD_TOPIC'
  | 'E_BAD_CHANNEL'
  | 'E_BAD_MESSAGE'
  | 'E_PUB_FAILED'
  | 'E_MPUB_FAILED'
  | 'E_DPUB_FAILED'
  | 'E_FIN_FAILED'
  | 'E_REQ_FAILED'
  | 'E_TOUCH_FAILED'
  | 'E_AUTH_DISABLED'
  | 'E_AUTH_FAILED'
  | 'E_AUTH_FIRST'
  | 'E_UNAUTHORIZED'
  | 'E_IDENTIFY_FAILED';

export class ClientError extends Error {
  override name = 'ClientError';
  readonly code: ProtocolErrorCode;
  readonly fatal: boolean;
  constructor(code: ProtocolErrorCode, description: string, fatal: boolean) {
    super(`${code} ${description}`);
    this.code = code;
    this.fatal = fatal;
  }
}

/** Closes the connection after the error frame. */
export function fatal(code: ProtocolErrorCode, description: string): ClientError {
  return new ClientError(code, description, true);
}

/** Leaves the connection open. */
export function nonFatal(code: ProtocolErrorCode, description: string): ClientError {
  return new ClientError(code, description, false);
}
