/**
 * One conformance suite for every transport (Watermill's universal pub/sub tests are the
 * model): "every transport should pass it before it is considered production ready". A case
 * that needs a feature the transport declares missing is skipped with the reason — never
 * silently. Exported as `conveyor-pipelines/testing`, so users run it on their own transports:
 *
 * @example
 * import { conformance } from 'conveyor-pipelines/testing';
 * conformance({ name: 'my-engine', connect: () => connect('my://...') });
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, type TestContext, test } from 'node:test';
import { isConveyorError, isRetryable, PermanentError } from '../core/errors.ts';
import { HEADER, type Delivery, type OutgoingMessage } from '../core/message.ts';
import { bytesMessage } from '../core/schema.ts';
import type { Subscription, Transport, TransportFeatures } from '../core/transport.ts';
import { app } from '../runtime/app.ts';

export interface ConformanceOptions {
  name: string;
  /** A fresh connection per call. */
  connect: () => Promise<Transport>;
  /**
   * Kills the transport's connection(s) mid-stream (e.g. through a {@link TcpProxy}). Without
   * it the dropped-connection case is skipped with that reason.
   */
  dropConnection?: (transport: Transport) => Promise<void> | void;
  /** Overrides of the transport's declared features (e.g. a smaller server-side limit). */
  features?: Partial<TransportFeatures>;
  /** Multiplies every wait, for slow engines. @default 1 */
  timeoutScale?: number;
  /** In-flight timeout used by the timeout and touch cases, ms. @default 1000 (NSQ's minimum) */
  timeoutMs?: number;
  /**
   * Called once after the suite with every topic and its channels the cases made, so durable
   * engines can delete what the suite left behind (queues, streams, exchanges).
   */
  cleanup?: (made: Array<{ topic: string; channels: string[] }>) => Promise<void> | void;
}

let seq = 0;
function uniqueTopic(): string {
  return `conf_${process.pid}_${Date.now().toString(36)}_${(seq++).toString(36)}`;
}

function message(n: number, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { id: randomBytes(8).toString('hex'), body: new TextEncoder().encode(`message ${n}`), headers: { n: String(n) }, ...extra };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function conformance(options: ConformanceOptions): void {
  const scale = options.timeoutScale ?? 1;
  const timeoutMs = options.timeoutMs ?? 1000;

  async function waitFor(check: () => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms * scale;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`${options.name}: timed out waiting for ${what}`);
      await sleep(5);
    }
  }

  /** A connection closed when the test ends, with the features under test. */
  async function open(t: TestContext): Promise<{ transport: Transport; features: TransportFeatures }> {
    const transport = await options.connect();
    t.after(() => transport.close());
    return { transport, features: { ...transport.features, ...options.features } };
  }

  /** Subscribes and keeps every delivery; `ack` decides what happens to each. */
  const made = new Map<string, Set<string>>();

  async function consumer(
    transport: Transport,
    topic: string,
    channel: string,
    ack: ((d: Delivery) => void) | 'ack' | 'hold' = 'ack',
    maxInFlight = 100,
    subscribeTimeoutMs?: number,
  ): Promise<{ got: Delivery[]; sub: Subscription }> {
    const got: Delivery[] = [];
    if (!made.has(topic)) made.set(topic, new Set());
    made.get(topic)!.add(channel);
    const sub = await transport.subscribe(topic, channel, { maxInFlight, ...(subscribeTimeoutMs ? { timeoutMs: subscribeTimeoutMs } : {}) }, (d) => {
      got.push(d);
      if (ack === 'ack') d.ack();
      else if (typeof ack === 'function') ack(d);
    });
    return { got, sub };
  }

  function skipUnless(t: TestContext, has: boolean, feature: string, why: string): boolean {
    if (!has) t.skip(`${feature} not supported by ${options.name}: ${why}`);
    return !has;
  }

  describe(`conformance: ${options.name}`, () => {
    after(async () => {
      await options.cleanup?.([...made].map(([topic, channels]) => ({ topic, channels: [...channels] })));
    });
    test('publish resolves once confirmed, and what was confirmed is delivered', async (t) => {
      const { transport } = await open(t);
      const topic = uniqueTopic();
      const { got } = await consumer(transport, topic, 'c');
      const sent = Array.from({ length: 20 }, (_, n) => message(n));
      await transport.publish(topic, sent);
      await waitFor(() => got.length >= 20, '20 deliveries');
      assert.deepEqual(new Set(got.map((d) => d.id)), new Set(sent.map((m) => m.id)));
      for (const d of got) {
        assert.equal(d.topic, topic);
        assert.equal(d.channel, 'c');
        assert.equal(d.attempts, 1);
        assert.ok(d.timestamp > Date.now() - 60_000 && d.timestamp <= Date.now() + 5000, `timestamp ${d.timestamp}`);
      }
    });

    test('fan-out: every channel gets every message', async (t) => {
      const { transport } = await open(t);
      const topic = uniqueTopic();
      const a = await consumer(transport, topic, 'a');
      const b = await consumer(transport, topic, 'b');
      await transport.publish(topic, Array.from({ length: 10 }, (_, n) => message(n)));
      await waitFor(() => a.got.length >= 10 && b.got.length >= 10, 'both channels');
      await sleep(100 * scale);
      assert.equal(a.got.length, 10);
      assert.equal(b.got.length, 10);
    });

    test('load balancing: consumers of one channel share its messages', async (t) => {
      const { transport } = await open(t);
      const other = await options.connect();
      t.after(() => other.close());
      const topic = uniqueTopic();
      const slowAck = (d: Delivery) => setTimeout(() => d.ack(), 5);
      const a = await consumer(transport, topic, 'shared', slowAck, 1);
      const b = await consumer(other, topic, 'shared', slowAck, 1);
      await transport.publish(topic, Array.from({ length: 40 }, (_, n) => message(n)));
      await waitFor(() => a.got.length + b.got.length >= 40, '40 deliveries');
      await sleep(100 * scale);
      assert.equal(new Set([...a.got, ...b.got].map((d) => d.id)).size, 40);
      assert.ok(a.got.length > 0 && b.got.length > 0, `split ${a.got.length}/${b.got.length}`);
    });

    test('ack: an acked message is not delivered again', async (t) => {
      const { transport, features } = await open(t);
      const topic = uniqueTopic();
      const { got, sub } = await consumer(transport, topic, 'c', 'ack', 10, timeoutMs);
      await transport.publish(topic, [message(1), message(2)]);
      await waitFor(() => got.length >= 2, 'two deliveries');
      await sleep((features.timeoutRedelivery ? timeoutMs * 1.5 : 300) * scale);
      await sub.close();
      const again = await consumer(transport, topic, 'c');
      await sleep(300 * scale);
      assert.equal(got.length, 2);
      assert.equal(again.got.length, 0);
    });

    test('nack with delay redelivers after the delay without blocking the others', async (t) => {
      const { transport, features } = await open(t);
      if (skipUnless(t, features.delayedNack, 'delayedNack', 'the broker cannot delay a redelivery')) return;
      const topic = uniqueTopic();
      const seen: Array<{ id: string; attempts: number; at: number }> = [];
      let nackedAt = 0;
      const { got } = await consumer(transport, topic, 'c', (d) => {
        seen.push({ id: d.id, attempts: d.attempts, at: Date.now() });
        if (d.headers.n === '1' && d.attempts === 1) {
          nackedAt = Date.now();
          d.nack(400);
        } else d.ack();
      });
      await transport.publish(topic, [message(1), message(2)]);
      await waitFor(() => got.length >= 3, 'redelivery', 5000);
      const redelivery = seen.find((s) => s.attempts === 2)!;
      assert.ok(redelivery, 'redelivered with attempts 2');
      assert.ok(redelivery.at - nackedAt >= 350, `redelivered after ${redelivery.at - nackedAt} ms, asked 400`);
      const other = seen.find((s) => s.id !== redelivery.id)!;
      assert.ok(other.at < redelivery.at, 'the other message was not blocked behind the delay');
    });

    test('an unacked message past its timeout is redelivered with attempts + 1', async (t) => {
      const { transport, features } = await open(t);
      if (skipUnless(t, features.timeoutRedelivery, 'timeoutRedelivery', 'the broker has no in-flight timeout')) return;
      const topic = uniqueTopic();
      const { got } = await consumer(transport, topic, 'c', (d) => {
        if (d.attempts > 1) d.ack();
      }, 10, timeoutMs);
      await transport.publish(topic, [message(1)]);
      await waitFor(() => got.length >= 2, 'redelivery after timeout', timeoutMs * 5);
      assert.deepEqual(got.slice(0, 2).map((d) => d.attempts), [1, 2]);
      assert.equal(got[0]!.id, got[1]!.id);
    });

    test('touch keeps a message from timing out', async (t) => {
      const { transport, features } = await open(t);
      if (skipUnless(t, features.touch && features.timeoutRedelivery, 'touch', 'the broker has no in-flight timeout to extend')) return;
      const topic = uniqueTopic();
      const { got } = await consumer(transport, topic, 'c', 'hold', 10, timeoutMs);
      await transport.publish(topic, [message(1)]);
      await waitFor(() => got.length >= 1, 'delivery');
      const first = got[0]!;
      for (let i = 0; i < 6; i++) {
        await sleep(timeoutMs / 3);
        first.touch();
      }
      first.ack();
      await sleep(timeoutMs * 1.2);
      assert.equal(got.length, 1, `held for ${2 * timeoutMs} ms with touches: no redelivery`);
    });

    test('headers round-trip, unicode included', async (t) => {
      const { transport } = await open(t);
      const topic = uniqueTopic();
      const { got } = await consumer(transport, topic, 'c');
      const headers = { 'content-type': 'application/cbor', 'x-trace': 'abc-123', 'x-unicode': 'Grüße ✓ 日本' };
      await transport.publish(topic, [message(1, { headers })]);
      await waitFor(() => got.length >= 1, 'delivery');
      for (const [k, v] of Object.entries(headers)) assert.equal(got[0]!.headers[k], v, `header ${k}`);
    });

    test('max in flight is never exceeded', async (t) => {
      const { transport } = await open(t);
      const topic = uniqueTopic();
      let held = 0;
      let peak = 0;
      const { got } = await consumer(
        transport,
        topic,
        'c',
        (d) => {
          held++;
          peak = Math.max(peak, held);
          setTimeout(() => {
            held--;
            d.ack();
          }, 10);
        },
        3,
      );
      await transport.publish(topic, Array.from({ length: 30 }, (_, n) => message(n)));
      await waitFor(() => got.length >= 30, '30 deliveries');
      assert.ok(peak <= 3, `peak unacked ${peak} > maxInFlight 3`);
    });

    test('dead-letter through the runtime', async (t) => {
      const { transport } = await open(t);
      const topic = uniqueTopic();
      const Raw = bytesMessage('raw', { topic });
      const dead = await consumer(transport, `${topic}.dead`, 'check');
      const a = app({ transport, ownsTransport: false });
      t.after(() => a.close({ force: true }));
      made.get(topic)?.add('worker') ?? made.set(topic, new Set(['worker']));
      await a.consume(Raw, { channel: 'worker' }, () => {
        throw new PermanentError('poison');
      });
      await a.publish(Raw, new TextEncoder().encode('bad'));
      await waitFor(() => dead.got.length >= 1, 'dead letter');
      assert.equal(dead.got[0]!.headers[HEADER.deadCode], 'ERR_PERMANENT');
      assert.equal(dead.got[0]!.headers[HEADER.deadReason], 'poison');
      assert.equal(dead.got[0]!.headers[HEADER.deadTopic], topic);
      assert.equal(new TextDecoder().decode(dead.got[0]!.body), 'bad');
    });

    test('many topics at once', async (t) => {
      const { transport } = await open(t);
      const topics = Array.from({ length: 8 }, () => uniqueTopic());
      const consumers = await Promise.all(topics.map((topic) => consumer(transport, topic, 'c')));
      await Promise.all(topics.map((topic) => transport.publish(topic, Array.from({ length: 5 }, (_, n) => message(n)))));
      await waitFor(() => consumers.every((c) => c.got.length >= 5), 'every topic');
      for (const [i, c] of consumers.entries()) assert.ok(c.got.every((d) => d.topic === topics[i]), 'no crossed topics');
    });

    test('large messages up to the limit arrive intact; past it ERR_TOO_LARGE', async (t) => {
      const { transport, features } = await open(t);
      const topic = uniqueTopic();
      const { got } = await consumer(transport, topic, 'c');
      // Leave room for the engine's own framing (envelope, headers) inside its limit.
      const size = Math.max(1, features.maxMessageBytes - 2048);
      const big = randomBytes(size);
      await transport.publish(topic, [message(1, { body: big })]);
      await waitFor(() => got.length >= 1, 'the large message', 10_000);
      assert.equal(Buffer.compare(Buffer.from(got[0]!.body), big), 0);
      await assert.rejects(transport.publish(topic, [message(2, { body: new Uint8Array(features.maxMessageBytes + 1) })]), (e: unknown) => {
        assert.ok(isConveyorError(e) && e.code === 'ERR_TOO_LARGE', `expected ERR_TOO_LARGE, got ${e}`);
        return true;
      });
    });

    test('a dropped connection is recovered with no confirmed message lost', async (t) => {
      const { transport } = await open(t);
      if (!options.dropConnection) {
        t.skip(`dropped connection not tested for ${options.name}: no dropConnection hook given`);
        return;
      }
      const topic = uniqueTopic();
      const ids = new Set<string>();
      const { got } = await consumer(transport, topic, 'c');
      const confirmed: string[] = [];
      const publishOne = async (n: number) => {
        const m = message(n);
        for (let tries = 0; tries < 100; tries++) {
          try {
            await transport.publish(topic, [m]);
            confirmed.push(m.id!);
            return;
          } catch (e) {
            if (!isRetryable(e)) throw e;
            await sleep(50);
          }
        }
        throw new Error(`message ${n} never confirmed`);
      };
      for (let n = 0; n < 10; n++) await publishOne(n);
      await options.dropConnection(transport);
      for (let n = 10; n < 20; n++) await publishOne(n);
      await waitFor(() => {
        for (const d of got) ids.add(d.id);
        return confirmed.every((id) => ids.has(id));
      }, 'every confirmed message after the drop', 15_000);
    });

    test('closing a subscription loses nothing: unacked messages go to the next subscriber', async (t) => {
      const { transport } = await open(t);
      const topic = uniqueTopic();
      const first = await consumer(transport, topic, 'c', 'hold', 10);
      const sent = Array.from({ length: 5 }, (_, n) => message(n));
      await transport.publish(topic, sent);
      await waitFor(() => first.got.length >= 5, 'held deliveries');
      await first.sub.close();
      const second = await consumer(transport, topic, 'c');
      await waitFor(() => new Set(second.got.map((d) => d.id)).size >= 5, 'redelivery to the next subscriber', 10_000);
      assert.deepEqual(new Set(second.got.map((d) => d.id)), new Set(sent.map((m) => m.id)));
    });
  });
}
