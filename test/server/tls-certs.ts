/**
 * A self-signed certificate for 127.0.0.1/localhost, made with openssl when a test runs (no key
 * is ever committed) in a temp dir removed after the test.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export interface TestCert {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export function makeCert(t: TestContext): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

export interface TestClientCert {
  caFile: string;
  ca: string;
  certFile: string;
  keyFile: string;
}

/** A throwaway CA and a client certificate it signed, with subject CN `commonName`. */
export function makeClientCert(t: TestContext, commonName: string): TestClientCert {
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-tls-client-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = (name: string) => join(dir, name);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=test-ca']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('client.key'), '-out', f('client.csr'), '-subj', `/CN=${commonName}`]);
  run(['x509', '-req', '-in', f('client.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('client.pem'), '-days', '1']);
  return { caFile: f('ca.pem'), ca: readFileSync(f('ca.pem'), 'utf8'), certFile: f('client.pem'), keyFile: f('client.key') };
}
