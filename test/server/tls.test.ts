/**
 * TLS on the broker as nsqd does it: IDENTIFY tls_v1 → tls_v1: true → the same socket upgraded →
 * OK over TLS; --tls-required refuses everything else before; HTTPS and a bearer token on the
 * HTTP API. Driven by raw sockets, by nsqjs (a client nobody here wrote) and by the CLI.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
// @ts-expect-error nsqjs ships no types
import nsq from 'nsqjs';
import { spawnChild } from '../helpers/child.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { client, identify, testBroker } from './helpers.ts';
import { makeCert } from './tls-certs.ts';
import { cmd } from './wire.ts';

function hostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

/** One HTTPS request trusting `ca`; resolves with status and body. */
function https(url: string, ca: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, method: init.method ?? 'GET', headers: init.headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads NSQ frames off a TLS socket. */
function frames(socket: import('node:tls').TLSSocket): () => Promise<{ type: number; data: string }> {
  let buf = Buffer.alloc(0);
  const waiting: Array<() => void> = [];
  socket.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    for (const w of waiting.splice(0)) w();
  });
  return async () => {
    for (;;) {
      if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const size = buf.readUInt32BE(0);
        const frame = { type: buf.readUInt32BE(4), data: buf.subarray(8, 4 + size).toString() };
        buf = buf.subarray(4 + size);
        return frame;
      }
      await new Promise<void>((r) => waiting.push(r));
    }
  };
}

describe('broker TLS', () => {
  test('IDENTIFY tls_v1 is answered tls_v1: true, the socket upgrades in place, OK comes over TLS, then PUB works', async (t) => {
    const cert = makeCert(t);
    const broker = await testBroker(t, { tls: { cert: cert.cert, key: cert.key } });
    const c = await client(t, broker);
    const answer = await identify(c, { tls_v1: true });
    assert.equal(answer.tls_v1, true);
    const secure = tlsConnect({ socket: c.socket, ca: cert.cert, servername: 'localhost' });
    t.after(() => secure.destroy());
    const next = frames(secure);
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    assert.deepEqual(await next(), { type: 0, data: 'OK' });
    const topic = uniqueName('tls');
    secure.write(cmd(`PUB ${topic}`, 'over tls'));
    assert.deepEqual(await next(), { type: 0, data: 'OK' });
    const stats = JSON.parse((await https(`https://${broker.httpAddress}/stats?format=json`, cert.cert)).body);
    const producer = stats.producers.find((p: any) => p.tls === true);
    assert.ok(producer, 'stats show the TLS client');
    assert.match(producer.tls_version, /^TLSv1\.[23]$/);
  });

  test('without a certificate the broker answers tls_v1: false, as nsqd without --tls-cert', async (t) => {
    const broker = await testBroker(t);
    const c = await client(t, broker);
    assert.equal((await identify(c, { tls_v1: true })).tls_v1, false);
  });

  test('--tls-required: commands before the upgrade are refused (fatal E_INVALID), IDENTIFY is not', async (t) => {
    const cert = makeCert(t);
    const broker = await testBroker(t, { tls: { cert: cert.cert, key: cert.key, required: true } });
    const c = await client(t, broker);
    c.write(cmd(`PUB ${uniqueName('plain')}`, 'x'));
    assert.equal(await c.error(), 'E_INVALID cannot PUB in current state (TLS required)');
    const c2 = await client(t, broker);
    c2.write(cmd(`SUB ${uniqueName('plain')} ch`));
    assert.equal(await c2.error(), 'E_INVALID cannot SUB in current state (TLS required)');
    const c3 = await client(t, broker);
    assert.equal((await identify(c3, { tls_v1: false })).tls_v1, false);
    c3.write(cmd('NOP'));
    assert.equal(await c3.error(), 'E_INVALID cannot NOP in current state (TLS required)');
  });

  test('a client that never completes the handshake is dropped and the broker goes on', async (t) => {
    const cert = makeCert(t);
    const broker = await testBroker(t, { tls: { cert: cert.cert, key: cert.key } });
    const c = await client(t, broker);
    await identify(c, { tls_v1: true });
    c.write('this is not a TLS ClientHello\r\n\r\n');
    await waitFor(() => c.closed, 'the broker hung up', 7000);
    const ok = await client(t, broker);
    assert.equal((await identify(ok, { tls_v1: false })).tls_v1, false);
  });

  test('nsqjs publishes and consumes over TLS (tls: true, certificate verified against our CA)', async (t) => {
    const cert = makeCert(t);
    const broker = await testBroker(t, { tls: { cert: cert.cert, key: cert.key, required: true } });
    const [host, port] = hostPort(broker.tcpAddress);
    const topic = uniqueName('nsqjs_tls');
    const w = new nsq.Writer(host, port, { tls: true, tlsVerification: true, ca: Buffer.from(cert.cert) });
    t.after(() => w.close());
    await new Promise<void>((resolve, reject) => {
      w.once('ready', resolve);
      w.once('error', reject);
      w.connect();
    });
    await new Promise<void>((resolve, reject) => w.publish(topic, ['a', 'b', 'c'], (err: unknown) => (err ? reject(err) : resolve())));
    const got: string[] = [];
    const r = new nsq.Reader(topic, 'ch', { nsqdTCPAddresses: [broker.tcpAddress], tls: true, tlsVerification: true, ca: Buffer.from(cert.cert) });
    t.after(() => r.close());
    r.on('message', (m: any) => {
      got.push(m.body.toString());
      m.finish();
    });
    r.connect();
    await waitFor(() => got.length === 3, 'three messages over TLS');
    assert.deepEqual(got.sort(), ['a', 'b', 'c']);
  });

  test('the HTTP API is HTTPS with the same certificate, and an optional bearer token guards all but /ping', async (t) => {
    const cert = makeCert(t);
    const broker = await testBroker(t, { tls: { cert: cert.cert, key: cert.key }, httpToken: 's3cret' });
    const base = `https://${broker.httpAddress}`;
    assert.deepEqual(await https(`${base}/ping`, cert.cert), { status: 200, body: 'OK' });
    const topic = uniqueName('https');
    const refused = await https(`${base}/pub?topic=${topic}`, cert.cert, { method: 'POST' });
    assert.equal(refused.status, 401);
    assert.deepEqual(JSON.parse(refused.body), { message: 'UNAUTHORIZED' });
    assert.equal((await https(`${base}/stats`, cert.cert, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const stats = await https(`${base}/stats?format=json`, cert.cert, { headers: { authorization: 'Bearer s3cret' } });
    assert.equal(stats.status, 200);
    await assert.rejects(fetch(`http://${broker.httpAddress}/ping`), 'plain HTTP is not served next to HTTPS');
  });

  test('a bearer token works on plain HTTP too: 401 without it (WWW-Authenticate: Bearer), 200 with it', async (t) => {
    const broker = await testBroker(t, { httpToken: 'plain-token' });
    const base = `http://${broker.httpAddress}`;
    assert.equal((await fetch(`${base}/ping`)).status, 200);
    const refused = await fetch(`${base}/info`);
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer');
    const topic = uniqueName('token');
    const pub = await fetch(`${base}/pub?topic=${topic}`, { method: 'POST', body: 'x', headers: { authorization: 'Bearer plain-token' } });
    assert.equal(pub.status, 200);
    assert.equal((await fetch(`${base}/pub?topic=${topic}`, { method: 'POST', body: 'x', headers: { authorization: 'Bearer plain-tokeN' } })).status, 401);
    assert.equal((await fetch(`${base}/metrics`)).status, 401, '/metrics is behind the token too');
    assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer plain-token' } })).status, 200);
  });

  test('conveyor broker --tls-cert --tls-key --tls-required --http-token', async (t) => {
    const cert = makeCert(t);
    const run = spawnChild(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'broker', '--memory', '--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile, '--tls-required', '--http-token', 'tok'],
      {},
    );
    t.after(() => run.child.kill('SIGKILL'));
    // "tls required" is printed after the addresses; the output may arrive in pieces.
    await waitFor(() => /tls required/.test(run.out()) || run.exited(), 'the broker listens', 15_000);
    assert.match(run.out(), /tls required/, run.err());
    const tcp = /tcp (\S+)/.exec(run.out())![1]!;
    const httpsAddress = /https (\S+)/.exec(run.out())![1]!;
    const [host, port] = hostPort(tcp);
    const w = new nsq.Writer(host, port, { tls: true, tlsVerification: true, ca: Buffer.from(cert.cert) });
    t.after(() => w.close());
    await new Promise<void>((resolve, reject) => {
      w.once('ready', resolve);
      w.once('error', reject);
      w.connect();
    });
    const topic = uniqueName('cli_tls');
    await new Promise<void>((resolve, reject) => w.publish(topic, 'x', (err: unknown) => (err ? reject(err) : resolve())));
    const stats = await https(`https://${httpsAddress}/stats?format=json&topic=${topic}`, cert.cert, { headers: { authorization: 'Bearer tok' } });
    assert.equal(JSON.parse(stats.body).topics[0].message_count, 1);
    run.child.kill('SIGTERM');
    assert.equal(await run.done, 0);
  });
});

describe('conveyor broker says who can reach it', () => {
  test('by default: loopback only, and it says so; bound wider without AUTH it warns', async (t) => {
    const { run } = await import('../../src/cli/commands/broker.ts');
    const start = (args: string[]) => {
      const lines: string[] = [];
      const errors: string[] = [];
      const stop = new AbortController();
      const exit = run(['--memory', ...args], { out: (l) => lines.push(l), err: (l) => errors.push(l), stop: stop.signal });
      t.after(() => stop.abort());
      return { lines, errors, stop, exit };
    };
    const local = start(['--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0']);
    await waitFor(() => local.lines.some((l) => l.startsWith('access')), 'the access line');
    assert.match(local.lines.find((l) => l.startsWith('access'))!, /^access loopback only \(no --auth-http-address\)/);
    assert.deepEqual(
      local.errors.filter((l) => !l.includes('"level":"info"')),
      [],
      'nothing but info lines on stderr',
    );
    local.stop.abort();
    assert.equal(await local.exit, 0);

    const wide = start(['--tcp', '0.0.0.0:0', '--http', '127.0.0.1:0']);
    await waitFor(() => wide.errors.some((l) => l.includes('reachable')), 'the warning');
    const warning = JSON.parse(wide.errors.find((l) => l.includes('reachable'))!);
    assert.equal(warning.level, 'warn');
    assert.match(warning.msg, /reachable from other hosts and no --auth-http-address/);
    wide.stop.abort();
    assert.equal(await wide.exit, 0);
  });
});

describe('conveyor broker TLS flags', () => {
  test('bad combinations exit 2 with the reason', async () => {
    const { run } = await import('../../src/cli/commands/broker.ts');
    const cases: Array<[string[], RegExp]> = [
      [['--tls-cert', 'x.pem'], /--tls-cert and --tls-key go together/],
      [['--tls-required'], /--tls-required needs --tls-cert/],
      [['--tls-cert', 'x', '--tls-key', 'y', '--tls-client-auth-policy', 'maybe'], /expected require or require-verify/],
      [['--tls-cert', 'x', '--tls-key', 'y', '--tls-client-auth-policy', 'require-verify'], /needs --tls-root-ca-file/],
      [['--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem'], /ENOENT/],
    ];
    for (const [args, reason] of cases) {
      const errors: string[] = [];
      const code = await run(['--memory', ...args], { out: () => {}, err: (l) => errors.push(l) });
      assert.equal(code, 2, args.join(' '));
      assert.match(errors.join('\n'), reason);
    }
  });
});
