/**
 * TLS as nsqd negotiates it (nsqd/protocol_v2.go IDENTIFY, client_v2.go UpgradeTLS): the
 * connection starts in the clear; a client whose IDENTIFY asks `tls_v1` gets `tls_v1: true` in
 * the answer, both sides upgrade the same socket in place (the client speaks first, a TLS
 * ClientHello), and the server's `OK` is the first frame over TLS. With `required`, every
 * command but IDENTIFY is refused until then (nsqd's enforceTLSPolicy).
 */
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { ConveyorError } from '../../core/errors.ts';

export interface BrokerTlsOptions {
  /** PEM certificate chain (nsqd --tls-cert, read from the file by the CLI). */
  cert: string | Buffer;
  /** PEM private key (nsqd --tls-key). */
  key: string | Buffer;
  /** Refuse every command but IDENTIFY until the client upgraded (nsqd --tls-required). @default false */
  required?: boolean;
  /** Oldest TLS version accepted (nsqd --tls-min-version). @default 'TLSv1.2' */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface TlsSettings {
  readonly context: SecureContext;
  readonly required: boolean;
  readonly options: BrokerTlsOptions;
}

/** nsqd gives the handshake 5 s (client_v2.go UpgradeTLS); a client that stalls it is dropped. */
const HANDSHAKE_TIMEOUT_MS = 5000;

export function resolveTls(options: BrokerTlsOptions | undefined): TlsSettings | undefined {
  if (options === undefined) return undefined;
  try {
    const context = createSecureContext({ cert: options.cert, key: options.key, minVersion: options.minVersion ?? 'TLSv1.2' });
    return { context, required: options.required === true, options };
  } catch (cause) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `invalid broker options: tls: ${(cause as Error).message}`, { cause });
  }
}

/** Wraps `socket` as a TLS server socket and resolves once the handshake is done. */
export function upgradeSocket(socket: Socket, tls: TlsSettings): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new TLSSocket(socket, { isServer: true, secureContext: tls.context });
    const timer = setTimeout(() => fail(new Error('TLS handshake timed out')), HANDSHAKE_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      secure.destroy();
      reject(err);
    };
    secure.once('error', fail);
    secure.once('secure', () => {
      clearTimeout(timer);
      secure.off('error', fail);
      resolve(secure);
    });
  });
}
