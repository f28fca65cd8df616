/**
 * Interoperability with nsqjs, an NSQ client nobody here wrote: its Writer publishes (PUB and
 * MPUB) and its Reader consumes with maxInFlight, requeue, touch and finish, pointed at the
 * broker with nsqdTCPAddresses, exactly as it would be pointed at nsqd.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
// @ts-expect-error nsqjs ships no types
import nsq from 'nsqjs';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { testBroker } from './helpers.ts';

function hostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

async function writer(t: import('node:test').TestContext, address: string): Promise<any> {
  const [host, port] = hostPort(address);
  const w = new nsq.Writer(host, port);
  await new Promise<void>((resolve, reject) => {
    w.once('ready', resolve);
    w.once('error', reject);
    w.connect();
  });
  t.after(() => w.close());
  return w;
}

function publish(w: any, topic: string, messages: string | string[]): Promise<void> {
  return new Promise((resolve, reject) => w.publish(topic, messages, (err: unknown) => (err ? reject(err) : resolve())));
}

function reader(t: import('node:test').TestContext, address: string, topic: string, options: Record<string, unknown>): any {
  const r = new nsq.Reader(topic, 'interop', { nsqdTCPAddresses: [address], ...options });
  t.after(() => r.close());
  return r;
}

test('nsqjs Writer publishes with PUB and MPUB; nsqjs Reader receives and finishes all', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const w = await writer(t, broker.tcpAddress);
  await publish(w, topic, 'single');
  await publish(
    w,
    topic,
    Array.from({ length: 99 }, (_, i) => `batch-${i}`),
  );
  const r = reader(t, broker.tcpAddress, topic, { maxInFlight: 10 });
  const seen = new Set<string>();
  let maxInFlight = 0;
  let inFlight = 0;
  r.on('message', (msg: any) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    seen.add(msg.body.toString());
    // Finish a little later so that several are held at once.
    setTimeout(() => {
      inFlight--;
      msg.finish();
    }, 2);
  });
  r.connect();
  await waitFor(() => seen.size === 100, '100 messages through nsqjs', 10_000);
  assert.ok(seen.has('single') && seen.has('batch-98'));
  assert.ok(maxInFlight <= 10, `nsqjs held ${maxInFlight} at once with maxInFlight 10`);
  await waitFor(async () => {
    const stats: any = await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json();
    const ch = stats.topics[0].channels[0];
    return ch.depth === 0 && ch.in_flight_count === 0 && ch.clients[0]?.finish_count === 100;
  }, 'every message finished');
});

test('nsqjs requeue redelivers with more attempts; touch keeps a slow message in flight', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const w = await writer(t, broker.tcpAddress);
  await publish(w, topic, ['requeue-me', 'touch-me']);
  // messageTimeout is nsqjs's msg_timeout (ms); 1000 is nsqd's minimum.
  const r = reader(t, broker.tcpAddress, topic, { maxInFlight: 2, messageTimeout: 1000 });
  const attempts: Record<string, number[]> = { 'requeue-me': [], 'touch-me': [] };
  let touchedAt = 0;
  r.on('message', (msg: any) => {
    const body = msg.body.toString();
    attempts[body]!.push(msg.attempts);
    if (body === 'requeue-me') {
      if (msg.attempts === 1) msg.requeue(0, false);
      else msg.finish();
    } else {
      // Hold it 1.6 s, past its 1 s timeout, touching it every 400 ms.
      touchedAt = Date.now();
      const timer = setInterval(() => msg.touch(), 400);
      setTimeout(() => {
        clearInterval(timer);
        msg.finish();
      }, 1600);
    }
  });
  r.connect();
  await waitFor(() => attempts['requeue-me']!.length === 2, 'the requeued message again', 5000);
  assert.deepEqual(attempts['requeue-me'], [1, 2]);
  await waitFor(() => touchedAt > 0 && Date.now() - touchedAt > 1800, 'the touched message held past its timeout', 5000);
  assert.deepEqual(attempts['touch-me'], [1], 'a touched message must not time out and come back');
  const stats: any = await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json();
  const ch = stats.topics[0].channels[0];
  assert.equal(ch.requeue_count, 1);
  assert.equal(ch.timeout_count, 0);
  assert.equal(ch.in_flight_count, 0);
});

test('nsqjs answers our heartbeats and stays connected past two intervals', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  // heartbeatInterval is in seconds for nsqjs; 1 s is nsqd's minimum.
  const r = reader(t, broker.tcpAddress, topic, { maxInFlight: 1, heartbeatInterval: 1 });
  const received: string[] = [];
  r.on('message', (msg: any) => {
    received.push(msg.body.toString());
    msg.finish();
  });
  r.connect();
  const clients = async () => {
    const stats: any = await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json();
    return (stats.topics[0]?.channels[0]?.clients ?? []) as { remote_address: string }[];
  };
  await waitFor(async () => (await clients()).length === 1, 'the reader subscribed');
  const before = (await clients())[0]!.remote_address;
  await new Promise((resolve) => setTimeout(resolve, 2600));
  const w = await writer(t, broker.tcpAddress);
  await publish(w, topic, 'after the heartbeats');
  await waitFor(() => received.length === 1, 'delivery on the same connection', 3000);
  assert.deepEqual(
    (await clients()).map((c) => c.remote_address),
    [before],
    'still the same connection (a dropped reader would have reconnected from another port)',
  );
});
