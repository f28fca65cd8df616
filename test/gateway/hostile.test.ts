// Issue 14's gateway findings, each driven as a hostile or unlucky client would.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { request } from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import { connect as tcp } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { z } from 'zod';
import { connect } from '../../src/connect.ts';
import { codecs } from '../../src/core/codecs/index.ts';
import type { Delivery } from '../../src/core/message.ts';
import { defineMessage } from '../../src/core/schema.ts';
import { type GatewayOptions, gateway } from '../../src/gateway/index.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';

const Event = defineMessage({ name: 'event', topic: 'events', schema: z.object({ kind: z.string(), n: z.number() }) });

async function setup(t: TestContext, extra: Partial<GatewayOptions> = {}) {
  const transport = await connect(`memory://${uniqueName('gwh')}`);
  const got: Delivery[] = [];
  for (const topic of ['events', 'raw']) {
    await transport.subscribe(topic, 'check', { maxInFlight: 1000 }, (d) => {
      got.push(d);
      d.ack();
    });
  }
  const gw = await gateway({ transport, topics: { events: Event, raw: null }, ...extra });
  t.after(async () => {
    await gw.close();
    await transport.close();
  });
  return { gw, got, port: Number(new URL(gw.url).port) };
}

function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A raw socket that writes `head` and `total` body bytes, and reads only once all is written, as
 * simple clients (Python's http.client, curl without Expect) do: an answer followed by a reset
 * from the server is then lost, the reset discarding it from the client's receive buffer.
 */
function streamBody(port: number, head: string, total: number, chunked: boolean): Promise<{ answer: string; error?: string }> {
  return new Promise((resolve) => {
    const socket = tcp(port, '127.0.0.1');
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const framed = chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]) : chunk;
    let answer = '';
    let sent = 0;
    let settled = false;
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve({ answer, error });
    };
    const pump = () => {
      while (sent < total && !socket.destroyed) {
        sent += chunk.length;
        if (!socket.write(framed)) return void socket.once('drain', pump);
      }
      if (sent >= total && !socket.destroyed) socket.write(chunked ? '0\r\n\r\n' : '', () => socket.resume());
    };
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      if (/\r\n\r\n[\s\S]*\}/.test(answer)) finish();
    });
    socket.on('error', (e) => finish((e as NodeJS.ErrnoException).code ?? e.message));
    socket.on('close', () => finish('closed'));
    socket.pause();
    socket.write(head);
    pump();
  });
}

/** `depth` one-element arrays, the innermost empty: [[[...[]...]]] in CBOR. */
function nestedCbor(depth: number): Uint8Array {
  const bytes = new Uint8Array(depth).fill(0x81);
  bytes[depth - 1] = 0x80;
  return bytes;
}

describe('gateway: hostile input (issue 14)', () => {
  test('JSON nested 10^5 deep on an untyped topic: 400, not 500; CBOR too; nothing published', async (t) => {
    const { gw, got } = await setup(t);
    for (const depth of [5_000, 100_000]) {
      const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      const json = await post(`${gw.url}/v1/topics/raw`, deep);
      assert.equal(json.status, 400, `JSON ${depth} deep`);
      assert.match(json.body.error, /nest/);
      const nd = await post(`${gw.url}/v1/topics/raw`, `{"ok":1}\n${deep}\n`, { 'content-type': 'application/x-ndjson' });
      assert.equal(nd.status, 400);
      assert.match(nd.body.error, /line 2/);
      const typed = await post(`${gw.url}/v1/topics/events`, deep);
      assert.equal(typed.status, 400);
      const cbor = await post(`${gw.url}/v1/topics/raw`, nestedCbor(depth), { 'content-type': 'application/cbor' });
      assert.equal(cbor.status, 400, `CBOR ${depth} deep`);
    }
    // Nesting within the limit, and brackets inside strings, still pass through as they came.
    const fine = `{"a":${'['.repeat(50)}"]]]}}}[[[{{{\\""${']'.repeat(50)}}`;
    assert.equal((await post(`${gw.url}/v1/topics/raw`, fine)).status, 201);
    await waitFor(() => got.length === 1, 'the one good body');
    assert.equal(new TextDecoder().decode(got[0]!.body), fine);
  });

  test('a CBOR body that decodes but cannot be carried as JSON on an untyped topic: 400, not 500', async (t) => {
    const { gw, got } = await setup(t);
    // undefined (0xf7) and an unsigned 2^64-1 (a BigInt) both parse as CBOR and have no JSON form.
    for (const bytes of [[0xf7], [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]) {
      const res = await post(`${gw.url}/v1/topics/raw`, Uint8Array.from(bytes), { 'content-type': 'application/cbor' });
      assert.equal(res.status, 400, `CBOR ${bytes.map((b) => b.toString(16)).join(' ')}`);
    }
    const ok = await post(`${gw.url}/v1/topics/raw`, codecs.cbor.encode({ a: [1, 'x'] }), { 'content-type': 'application/cbor' });
    assert.equal(ok.status, 201);
    await waitFor(() => got.length === 1, 'the one good body');
    assert.deepEqual(codecs.json.decode(got[0]!.body), { a: [1, 'x'] });
  });

  test('invalid UTF-8 in a JSON body: 400 (it would fail every consumer’s decoder)', async (t) => {
    const { gw } = await setup(t);
    const res = await post(`${gw.url}/v1/topics/raw`, Uint8Array.from([0x22, 0xc3, 0x28, 0x22]));
    assert.equal(res.status, 400);
  });

  test('a malformed % escape in the topic: 400; an unsupported content type: 415', async (t) => {
    const { gw } = await setup(t);
    const bad = await post(`${gw.url}/v1/topics/ev%E0%A4%A`, '{}');
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /topic/);
    const type = await post(`${gw.url}/v1/topics/events`, '<xml/>', { 'content-type': 'application/xml' });
    assert.equal(type.status, 415);
    assert.match(type.body.error, /application\/json/);
  });

  test('the bearer token is compared in constant time, whatever the length sent', async (t) => {
    const { gw } = await setup(t, { auth: { token: 's3cret' } });
    let calls = 0;
    const original = crypto.timingSafeEqual;
    crypto.timingSafeEqual = (a, b) => {
      calls++;
      return original(a, b);
    };
    syncBuiltinESMExports();
    t.after(() => {
      crypto.timingSafeEqual = original;
      syncBuiltinESMExports();
    });
    const body = '{"kind":"a","n":1}';
    for (const authorization of ['Bearer s3cre', 'Bearer s3creT', 'Bearer s3cret-and-more', 'bearer s3cret', 's3cret']) {
      assert.equal((await post(`${gw.url}/v1/topics/events`, body, { authorization })).status, 401, authorization);
    }
    assert.equal((await post(`${gw.url}/v1/topics/events`, body)).status, 401);
    assert.equal((await post(`${gw.url}/v1/topics/events`, body, { authorization: 'Bearer s3cret' })).status, 201);
    assert.ok(calls >= 6, `timingSafeEqual used for every presented token (${calls} calls)`);
  });

  test('a 100 MB body always gets its 413, never a reset (10 times, declared and chunked)', async (t) => {
    const { gw, port } = await setup(t);
    const total = 100 * 1024 * 1024;
    for (let i = 0; i < 10; i++) {
      const chunked = i % 2 === 1;
      const head = chunked
        ? 'POST /v1/topics/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n'
        : `POST /v1/topics/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${total}\r\n\r\n`;
      const { answer, error } = await streamBody(port, head, total, chunked);
      assert.match(answer, /^HTTP\/1\.1 413 /, `run ${i + 1} (${chunked ? 'chunked' : 'declared'}): got ${JSON.stringify(answer.slice(0, 40))}, ${error}`);
    }
    // The gateway still serves.
    assert.equal((await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":1}')).status, 201);
  });
});

describe('gateway: slow clients (issue 14)', () => {
  test('a header slowloris and a body slowloris are dropped after their timeouts, not Node’s minutes', async (t) => {
    const { gw, port } = await setup(t, { headersTimeoutMs: 600, bodyTimeoutMs: 600 });
    const trickle = (first: string, next: string) =>
      new Promise<{ ms: number; answer: string }>((resolve) => {
        const started = performance.now();
        const socket = tcp(port, '127.0.0.1');
        let answer = '';
        socket.write(first);
        const timer = setInterval(() => socket.write(next), 100);
        socket.on('data', (d) => (answer += d));
        socket.on('error', () => {});
        socket.on('close', () => {
          clearInterval(timer);
          resolve({ ms: performance.now() - started, answer });
        });
      });
    const [headers, body] = await Promise.all([
      trickle('POST /v1/topics/events HTTP/1.1\r\nhost: x\r\n', 'x-slow: 1\r\n'),
      trickle('POST /v1/topics/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n', ' '),
    ]);
    assert.ok(headers.ms < 5_000, `header slowloris closed after ${Math.round(headers.ms)} ms`);
    assert.ok(body.ms < 5_000, `body slowloris closed after ${Math.round(body.ms)} ms`);
    assert.match(body.answer, /^HTTP\/1\.1 408 /);
    assert.equal((await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":1}')).status, 201);
  });

  test('clients trickling bodies do not take concurrency slots: a complete request still gets 201', async (t) => {
    const { gw, port } = await setup(t, { maxConcurrent: 2 });
    const sockets = Array.from({ length: 5 }, () => {
      const socket = tcp(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('POST /v1/topics/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"kind":');
      return socket;
    });
    t.after(() => {
      for (const s of sockets) s.destroy();
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await post(`${gw.url}/v1/topics/events`, '{"kind":"a","n":1}')).status, 201);
    assert.equal(gw.stats().concurrent, 0);
    // Before gw.close, which waits for open requests (up to bodyTimeoutMs).
    for (const s of sockets) s.destroy();
  });
});
