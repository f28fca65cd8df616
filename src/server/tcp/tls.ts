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
  /**
   * Client certificates (nsqd --tls-client-auth-policy): `require` asks for one and refuses a
   * client without, `require-verify` also checks it against `rootCa`. Its subject CN is sent to
   * the auth server as `common_name`. @default none asked
   */
  clientAuthPolicy?: 'require' | 'require-verify';
  /** PEM CA certificates that client certificates must chain to (nsqd --tls-root-ca-file). */
  rootCa?: string | Buffer;
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
  const policy = options.clientAuthPolicy;
  if (policy !== undefined && policy !== 'require' && policy !== 'require-verify') {
    throw new ConveyorError('ERR_BAD_OPTIONS', `invalid broker options: tls.clientAuthPolicy: expected require or require-verify, got ${JSON.stringify(policy)}`);
  }
  if (policy === 'require-verify' && options.rootCa === undefined) {
    throw new ConveyorError('ERR_BAD_OPTIONS', 'invalid broker options: tls.clientAuthPolicy require-verify needs rootCa (--tls-root-ca-file)');
  }
  try {
    const context = createSecureContext({
      cert: options.cert,
      key: options.key,
      minVersion: options.minVersion ?? 'TLSv1.2',
      ...(options.rootCa === undefined ? {} : { ca: options.rootCa }),
    });
    return { context, required: options.required === true, options };
  } catch (cause) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `invalid broker options: tls: ${(cause as Error).message}`, { cause });
  }
}

/** Wraps `socket` as a TLS server socket and resolves once the handshake is done. */
export function upgradeSocket(socket: Socket, tls: TlsSettings): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const policy = tls.options.clientAuthPolicy;
    const secure = new TLSSocket(socket, {
      isServer: true,
      secureContext: tls.context,
      requestCert: policy !== undefined,
      rejectUnauthorized: policy === 'require-verify',
    });
    const timer = setTimeout(() => fail(new Error('TLS handshake timed out')), HANDSHAKE_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      secure.destroy();
      reject(err);
    };
    secure.once('error', fail);
    secure.once('secure', () => {
      // `require` (Go's RequireAnyClientCert): any certificate, but one there must be.
      if (policy !== undefined && Object.keys(secure.getPeerCertificate() ?? {}).length === 0) {
        fail(new Error('no client certificate (tls client auth policy require)'));
        return;
      }
      clearTimeout(timer);
      secure.off('error', fail);
      resolve(secure);
    });
  });
}

/** The client certificate's subject CN, for the auth server's common_name ('' without one). */
export function peerCommonName(secure: TLSSocket): string {
  const cn = secure.getPeerCertificate()?.subject?.CN;
  return Array.isArray(cn) ? (cn[0] ?? '') : (cn ?? '');
}
