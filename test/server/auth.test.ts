/**
 * AUTH as nsqd does it, against an auth server run by the test: auth_required in IDENTIFY, the
 * AUTH command and its answer, per-topic/channel authorization with nsqd's regexes, the TTL
 * (asked again once expired), failures never leaked to the client; nsqjs with authSecret over TLS.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { describe, type TestContext, test } from 'node:test';
// @ts-expect-error nsqjs ships no types
import nsq from 'nsqjs';
import { bytesMessage } from '../../src/core/schema.ts';
import { ConveyorError } from '../../src/core/errors.ts';
import { app } from '../../src/runtime/app.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { client, identify, testBroker } from './helpers.ts';
import { makeCert, makeClientCert } from './tls-certs.ts';
import { cmd } from './wire.ts';

type Answer = { status?: number; body: Record<string, unknown> };

/** An auth server answering per secret; every query is kept. */
async function authServer(t: TestContext, answer: (secret: string, n: number) => Answer) {
  const queries: URLSearchParams[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/auth') {
      res.writeHead(404).end();
      return;
    }
    queries.push(url.searchParams);
    const secret = url.searchParams.get('secret') ?? '';
    const a = answer(secret, queries.filter((q) => q.get('secret') === secret).length);
    res.writeHead(a.status ?? 200, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { address: `127.0.0.1:${(server.address() as { port: number }).port}`, queries };
}

const PUBLISHER = { topic: '^auth_', channels: ['.*'], permissions: ['publish'] };
const SUBSCRIBER = { topic: '^auth_', channels: ['^good$'], permissions: ['subscribe'] };

function answers(secret: string, n: number): Answer {
  switch (secret) {
    case 'pub':
      return { body: { ttl: 3600, identity: 'producer-1', identity_url: 'https://id.example/p1', authorizations: [PUBLISHER] } };
    case 'sub':
      return { body: { ttl: 3600, identity: 'consumer-1', authorizations: [SUBSCRIBER, PUBLISHER] } };
    case 'none':
      return { body: { ttl: 3600, identity: 'nobody', authorizations: [] } };
    case 'short':
      // Allowed on the first answer, revoked on the next: the TTL decides when it is asked again.
      return { body: { ttl: 1, identity: 'brief', authorizations: n === 1 ? [PUBLISHER] : [] } };
    case 'badperm':
      return { body: { ttl: 60, authorizations: [{ topic: '.*', channels: ['.*'], permissions: ['admin'] }] } };
    default:
      return { status: 403, body: { message: 'NOT_AUTHORIZED' } };
  }
}

async function authed(t: TestContext, secret: string, address: string) {
  const broker = await testBroker(t, { auth: { httpAddresses: [address] } });
  const c = await client(t, broker);
  assert.equal((await identify(c)).auth_required, true);
  c.write(cmd('AUTH', secret));
  return { broker, c };
}

describe('broker AUTH', () => {
  test('IDENTIFY says auth_required; PUB and SUB before AUTH are refused with E_AUTH_FIRST', async (t) => {
    const auth = await authServer(t, answers);
    const broker = await testBroker(t, { auth: { httpAddresses: [auth.address] } });
    const c = await client(t, broker);
    assert.equal((await identify(c)).auth_required, true);
    c.write(cmd(`PUB ${uniqueName('auth')}`, 'x'));
    assert.equal(await c.error(), 'E_AUTH_FIRST AUTH required before PUB');
    const c2 = await client(t, broker);
    c2.write(cmd(`SUB ${uniqueName('auth')} good`));
    assert.equal(await c2.error(), 'E_AUTH_FIRST AUTH required before SUB');
  });

  test('AUTH answers identity, identity_url, permission_count; the auth server got remote_ip, tls and secret', async (t) => {
    const auth = await authServer(t, answers);
    const { c } = await authed(t, 'pub', auth.address);
    assert.deepEqual(JSON.parse(await c.response()), { identity: 'producer-1', identity_url: 'https://id.example/p1', permission_count: 1 });
    const q = auth.queries[0]!;
    assert.equal(q.get('remote_ip'), '127.0.0.1');
    assert.equal(q.get('tls'), 'false');
    assert.equal(q.get('secret'), 'pub');
    c.write(cmd('AUTH', 'pub'));
    assert.equal(await c.error(), 'E_INVALID AUTH already set', 'nsqd: one AUTH per connection');
  });

  test('publish permission on ^auth_: PUB there passes, another topic and SUB are E_UNAUTHORIZED (fatal)', async (t) => {
    const auth = await authServer(t, answers);
    const { broker, c } = await authed(t, 'pub', auth.address);
    await c.response();
    const topic = uniqueName('auth');
    c.write(cmd(`PUB ${topic}`, 'allowed'));
    assert.equal(await c.response(), 'OK');
    const other = uniqueName('other');
    c.write(cmd(`PUB ${other}`, 'refused'));
    assert.equal(await c.error(), `E_UNAUTHORIZED AUTH failed for PUB on "${other}" ""`);
    await waitFor(() => c.closed, 'the connection closed');
    const stats = await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json();
    assert.equal((stats as any).topics[0].message_count, 1, 'only the allowed PUB reached the topic');
    const c2 = await client(t, broker);
    await identify(c2);
    c2.write(cmd('AUTH', 'pub'));
    await c2.response();
    c2.write(cmd(`SUB ${topic} good`));
    assert.equal(await c2.error(), `E_UNAUTHORIZED AUTH failed for SUB on "${topic}" "good"`);
  });

  test('subscribe permission: channel regexes decide (^good$ yes, goodness no)', async (t) => {
    const auth = await authServer(t, answers);
    const { broker, c } = await authed(t, 'sub', auth.address);
    await c.response();
    const topic = uniqueName('auth');
    c.write(cmd(`SUB ${topic} goodness`));
    assert.equal(await c.error(), `E_UNAUTHORIZED AUTH failed for SUB on "${topic}" "goodness"`);
    const c2 = await client(t, broker);
    await identify(c2);
    c2.write(cmd('AUTH', 'sub'));
    await c2.response();
    c2.write(cmd(`SUB ${topic} good`));
    assert.equal(await c2.response(), 'OK');
  });

  test('no authorizations → E_UNAUTHORIZED; an auth server refusing or answering nonsense → E_AUTH_FAILED, details not leaked', async (t) => {
    const auth = await authServer(t, answers);
    const none = await authed(t, 'none', auth.address);
    assert.equal(await none.c.error(), 'E_UNAUTHORIZED AUTH no authorizations found');
    const refused = await authed(t, 'wrong', auth.address);
    assert.equal(await refused.c.error(), 'E_AUTH_FAILED AUTH failed');
    const nonsense = await authed(t, 'badperm', auth.address);
    assert.equal(await nonsense.c.error(), 'E_AUTH_FAILED AUTH failed');
    const logged: string[] = [];
    const broker = await testBroker(t, { auth: { httpAddresses: ['127.0.0.1:1'] }, log: (line) => logged.push(line) });
    const down = await client(t, broker);
    await identify(down);
    down.write(cmd('AUTH', 'pub'));
    assert.equal(await down.error(), 'E_AUTH_FAILED AUTH failed');
    assert.match(logged.join('\n'), /AUTH failed failed to auth against 127\.0\.0\.1:1/, 'the reason is logged, not sent');
  });

  test('the TTL: once expired the auth server is asked again, and a revoked permission refuses the next PUB', async (t) => {
    const auth = await authServer(t, answers);
    const { c } = await authed(t, 'short', auth.address);
    await c.response();
    const topic = uniqueName('auth');
    c.write(cmd(`PUB ${topic}`, 'first'));
    assert.equal(await c.response(), 'OK');
    assert.equal(auth.queries.length, 1, 'cached within the TTL');
    await new Promise((r) => setTimeout(r, 1100));
    c.write(cmd(`PUB ${topic}`, 'second'));
    assert.equal(await c.error(), `E_UNAUTHORIZED AUTH failed for PUB on "${topic}" ""`);
    assert.equal(auth.queries.length, 2, 'asked again after the TTL');
  });

  test('nsqjs with authSecret over TLS publishes and consumes; the auth server saw tls=true', async (t) => {
    const auth = await authServer(t, answers);
    const cert = makeCert(t);
    const broker = await testBroker(t, { auth: { httpAddresses: [auth.address] }, tls: { cert: cert.cert, key: cert.key, required: true } });
    const i = broker.tcpAddress.lastIndexOf(':');
    const tlsOptions = { tls: true, tlsVerification: true, ca: Buffer.from(cert.cert) };
    const w = new nsq.Writer(broker.tcpAddress.slice(0, i), Number(broker.tcpAddress.slice(i + 1)), { ...tlsOptions, authSecret: 'pub' });
    t.after(() => w.close());
    await new Promise<void>((resolve, reject) => {
      w.once('ready', resolve);
      w.once('error', reject);
      w.connect();
    });
    const topic = uniqueName('auth');
    await new Promise<void>((resolve, reject) => w.publish(topic, ['x', 'y'], (err: unknown) => (err ? reject(err) : resolve())));
    const got: string[] = [];
    const r = new nsq.Reader(topic, 'good', { nsqdTCPAddresses: [broker.tcpAddress], ...tlsOptions, authSecret: 'sub' });
    t.after(() => r.close());
    r.on('message', (m: any) => {
      got.push(m.body.toString());
      m.finish();
    });
    r.connect();
    await waitFor(() => got.length === 2, 'both messages');
    assert.ok(auth.queries.every((q) => q.get('tls') === 'true'));
    assert.deepEqual(new Set(auth.queries.map((q) => q.get('secret'))), new Set(['pub', 'sub']));
  });

  test("Conveyor's nsq:// with ?tls=true&tlsCa=&authSecret= publishes and consumes; denied and misconfigured say why", async (t) => {
    const auth = await authServer(t, answers);
    const cert = makeCert(t);
    const broker = await testBroker(t, { auth: { httpAddresses: [auth.address] }, tls: { cert: cert.cert, key: cert.key, required: true } });
    const base = `nsq://${broker.tcpAddress}?tls=true&tlsCa=${encodeURIComponent(cert.certFile)}`;
    const topic = uniqueName('auth');
    const Raw = bytesMessage(topic);
    const producer = app({ url: `${base}&authSecret=pub`, publishTimeoutMs: 5000, deadLetterLog: false });
    t.after(() => producer.close({ force: true }));
    const consumer = app({ url: `${base}&authSecret=sub`, deadLetterLog: false });
    t.after(() => consumer.close({ force: true }));
    const got: string[] = [];
    await consumer.consume(Raw, { channel: 'good' }, (body) => void got.push(Buffer.from(body).toString()));
    await producer.publishMany(Raw, [Buffer.from('one'), Buffer.from('two')]);
    await waitFor(() => got.length === 2, 'both messages through TLS and AUTH');
    assert.deepEqual(got.sort(), ['one', 'two']);

    // Publishing where the secret has no permission is the caller's error, not retried or spooled.
    await assert.rejects(producer.publish(bytesMessage(uniqueName('other')), Buffer.from('x')), (err: unknown) => {
      assert.ok(err instanceof ConveyorError);
      assert.match(err.message, /E_UNAUTHORIZED AUTH failed for PUB/);
      assert.equal(err.retryable, false);
      return true;
    });
    const noSecret = app({ url: base, publishTimeoutMs: 5000, deadLetterLog: false });
    t.after(() => noSecret.close({ force: true }));
    await assert.rejects(noSecret.publish(Raw, Buffer.from('x')), /requires AUTH: give the secret as \?authSecret=/);
    const plainBroker = await testBroker(t);
    const noTls = app({ url: `nsq://${plainBroker.tcpAddress}?tls=true`, publishTimeoutMs: 5000, deadLetterLog: false });
    t.after(() => noTls.close({ force: true }));
    await assert.rejects(noTls.publish(Raw, Buffer.from('x')), /does not offer TLS/);
    const untrusted = app({ url: `nsq://${broker.tcpAddress}?tls=true&authSecret=pub`, publishTimeoutMs: 5000, deadLetterLog: false });
    t.after(() => untrusted.close({ force: true }));
    await assert.rejects(untrusted.publish(Raw, Buffer.from('x')), /TLS with .* failed: self.signed/i);
  });

  test('client certificates (clientAuthPolicy require-verify): the CN reaches the auth server as common_name; no certificate, no connection', async (t) => {
    const auth = await authServer(t, answers);
    const cert = makeCert(t);
    const client = makeClientCert(t, 'worker-7');
    const broker = await testBroker(t, {
      auth: { httpAddresses: [auth.address] },
      tls: { cert: cert.cert, key: cert.key, required: true, clientAuthPolicy: 'require-verify', rootCa: client.ca },
    });
    const base = `nsq://${broker.tcpAddress}?tls=true&tlsCa=${encodeURIComponent(cert.certFile)}&authSecret=pub`;
    const Raw = bytesMessage(uniqueName('auth'));
    const withCert = app({ url: `${base}&tlsCert=${encodeURIComponent(client.certFile)}&tlsKey=${encodeURIComponent(client.keyFile)}`, deadLetterLog: false });
    t.after(() => withCert.close({ force: true }));
    await withCert.publish(Raw, Buffer.from('x'));
    assert.equal(auth.queries.at(-1)!.get('common_name'), 'worker-7');
    assert.equal(auth.queries.at(-1)!.get('tls'), 'true');

    const without = app({ url: base, publishTimeoutMs: 5000, deadLetterLog: false });
    t.after(() => without.close({ force: true }));
    await assert.rejects(without.publish(Raw, Buffer.from('x')), (err: unknown) => err instanceof ConveyorError && err.code === 'ERR_TRANSPORT');
    assert.equal(auth.queries.length, 1, 'a client without a certificate never reached AUTH');
  });
});
