// Issue 14: with the broker's socket stalled, the gateway's publish waited for the transport's
// heartbeat (~60 s); it now answers 503 with Retry-After at publishTimeoutMs.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, type TestContext, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import { gateway } from '../../src/gateway/index.ts';
import { startBroker } from '../../src/server/index.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { uniqueName } from '../helpers/index.ts';

function post(url: string, body: string, timeoutMs: number): Promise<{ status: number; retryAfter?: string; body: any; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, timeout: timeoutMs }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body: JSON.parse(text), ms: performance.now() - started }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function setup(t: TestContext, publishTimeoutMs?: number) {
  const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
  const proxy = await TcpProxy.start('127.0.0.1', Number(broker.tcpAddress.split(':').at(-1)));
  const transport = await connect(`nsq://127.0.0.1:${proxy.port}`);
  const topic = uniqueName('gwdl');
  const gw = await gateway({ transport, topics: { [topic]: null }, ...(publishTimeoutMs ? { publishTimeoutMs } : {}) });
  t.after(async () => {
    proxy.stall(false);
    await gw.close();
    await transport.close();
    await proxy.close();
    await broker.close();
  });
  return { proxy, url: `${gw.url}/v1/topics/${topic}` };
}

describe('gateway publish deadline', () => {
  test('a stalled broker socket: 503 with Retry-After at publishTimeoutMs, then 201 once bytes move', async (t) => {
    const { proxy, url } = await setup(t, 400);
    assert.equal((await post(url, '{"n":0}', 5000)).status, 201);
    proxy.stall(true);
    const stalled = await post(url, '{"n":1}', 5000);
    console.log(`# stalled publish answered ${stalled.status} after ${stalled.ms.toFixed(0)} ms (publishTimeoutMs 400)`);
    assert.equal(stalled.status, 503);
    assert.equal(stalled.retryAfter, '1');
    assert.match(stalled.body.error, /within 400 ms/);
    assert.ok(stalled.ms >= 390 && stalled.ms < 3000, `answered after ${stalled.ms.toFixed(0)} ms`);
    proxy.stall(false);
    assert.equal((await post(url, '{"n":2}', 5000)).status, 201);
  });

  test('the default deadline is 10 s; bad values are refused at start', async (t) => {
    const memory = await connect('memory://');
    t.after(() => memory.close());
    await assert.rejects(gateway({ transport: memory, topics: {}, publishTimeoutMs: -1 }), { code: 'ERR_BAD_OPTIONS' });
    const { proxy, url } = await setup(t);
    assert.equal((await post(url, '{"n":0}', 5000)).status, 201);
    proxy.stall(true);
    // Still waiting at 2 s: the default deadline is longer than that.
    await assert.rejects(post(url, '{"n":1}', 2000), /no answer within 2000 ms/);
  });
});
