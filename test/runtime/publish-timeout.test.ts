import assert from 'node:assert/strict';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { z } from 'zod';
import { connect } from '../../src/connect.ts';
import { ConveyorError } from '../../src/core/errors.ts';
import { defineMessage } from '../../src/core/schema.ts';
import { app } from '../../src/runtime/app.ts';
import { DEFAULT_PUBLISH_TIMEOUT_MS, resolvePublishTimeout } from '../../src/runtime/options.ts';
import { startBroker } from '../../src/server/index.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';

/**
 * A forwarder that can stall: while stalled, bytes in either direction are held (not dropped,
 * not closed), which is what a hung broker or a black-holed network looks like to a client.
 * (src/testing/proxy.ts can only cut or refuse connections.)
 */
class StallProxy {
  stalled = false;
  readonly #server: Server;
  readonly #flushes = new Set<() => void>();
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(port: number): Promise<StallProxy> {
    let proxy!: StallProxy;
    const server = createServer((client) => {
      const upstream = netConnect({ host: '127.0.0.1', port });
      proxy.#sockets.add(client).add(upstream);
      const held: Array<[Socket, Buffer]> = [];
      const forward = (to: Socket) => (chunk: Buffer) => {
        if (proxy.stalled) held.push([to, chunk]);
        else to.write(chunk);
      };
      const flush = () => {
        for (const [to, chunk] of held.splice(0)) to.write(chunk);
      };
      proxy.#flushes.add(flush);
      client.on('data', forward(upstream));
      upstream.on('data', forward(client));
      const close = () => {
        proxy.#flushes.delete(flush);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    proxy = new StallProxy(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  stall(on: boolean): void {
    this.stalled = on;
    if (!on) for (const flush of this.#flushes) flush();
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

async function setup(t: TestContext, publishTimeoutMs: number) {
  const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
  const proxy = await StallProxy.start(Number(broker.tcpAddress.split(':')[1]));
  const topic = uniqueName('pubto');
  const Msg = defineMessage({ name: 'job', topic, schema: z.object({ n: z.number() }) });
  const a = app({ url: `nsq://127.0.0.1:${proxy.port}`, publishTimeoutMs });
  t.after(async () => {
    proxy.stall(false);
    await a.close({ force: true });
    await proxy.close();
    await broker.close();
  });
  return { broker, proxy, topic, Msg, a };
}

/** Settles within `ms` or fails the test (today's code would wait ~60 s for the heartbeat). */
async function settle(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise.then(() => 'confirmed', (e: unknown) => e), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('publishTimeoutMs', () => {
  test('a publish over a stalled socket rejects with a retryable ERR_TIMEOUT at its deadline', async (t) => {
    const { proxy, Msg, a, topic } = await setup(t, 300);
    await a.publish(Msg, { n: 0 }); // connected and confirmed before the stall
    proxy.stall(true);
    const started = performance.now();
    const error = await settle(a.publish(Msg, { n: 1 }), 3000);
    const took = performance.now() - started;
    assert.ok(error instanceof ConveyorError, `expected a ConveyorError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_TIMEOUT');
    assert.equal(error.retryable, true);
    assert.equal(error.details?.topic, topic);
    assert.equal(error.details?.timeoutMs, 300);
    assert.ok(took >= 290 && took < 2000, `rejected after ${took.toFixed(0)} ms`);

    const many = await settle(a.publishMany(Msg, [{ n: 2 }, { n: 3 }]), 3000);
    assert.ok(many instanceof ConveyorError && many.code === 'ERR_TIMEOUT', `publishMany: ${String(many)}`);
    assert.equal(many.details?.messages, 2);

    // Once bytes move again the same app publishes normally.
    proxy.stall(false);
    assert.match(await a.publish(Msg, { n: 4 }), /.+/);
  });

  test('the late batch may still arrive after a timeout: the retry is a duplicate, not a loss', async (t) => {
    const { broker, proxy, Msg, a, topic } = await setup(t, 200);
    await a.publish(Msg, { n: 0 });
    proxy.stall(true);
    const error = await settle(a.publish(Msg, { n: 1 }), 3000);
    assert.equal((error as ConveyorError).code, 'ERR_TIMEOUT');
    proxy.stall(false);
    await a.publish(Msg, { n: 1 }); // the caller's retry
    const reader = await connect(`nsq://${broker.tcpAddress}`);
    t.after(() => reader.close());
    const seen: number[] = [];
    await reader.subscribe(topic, 'check', { maxInFlight: 10 }, (d) => {
      seen.push((Msg.decode(d.body, d.headers) as { n: number }).n);
      d.ack();
    });
    // The topic queued what it got before the channel existed: the first, the late one and the retry.
    await waitFor(() => seen.length >= 3, 'three messages');
    assert.deepEqual(
      seen.sort((x, y) => x - y),
      [0, 1, 1],
    );
  });

  test('publishTimeoutMs is validated; the default is 10 s', () => {
    assert.equal(DEFAULT_PUBLISH_TIMEOUT_MS, 10_000);
    assert.equal(resolvePublishTimeout(undefined), 10_000);
    assert.equal(resolvePublishTimeout(1500), 1500);
    assert.equal(resolvePublishTimeout(Number.POSITIVE_INFINITY), Number.POSITIVE_INFINITY);
    for (const bad of [0, -1, Number.NaN, '100', null]) {
      assert.throws(() => app({ url: 'memory://', publishTimeoutMs: bad as number }), { code: 'ERR_BAD_OPTIONS' }, String(bad));
    }
  });
});
