/**
 * KafkaSubscription's own logic (backpressure, watermark commits, rebalance, nack via the retry
 * topic) driven through the kafkajs consumer surface it uses, with no broker: a stand-in records
 * commits and fires the group events the way kafkajs does. The adapter against a broker (KAFKA_URL, or
 * librdkafka's mock cluster) is in kafka.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Consumer, EachMessagePayload, KafkaMessage } from 'kafkajs';
import type { Delivery } from '../../src/core/message.ts';
import { KafkaSubscription } from '../../src/transports/kafka/subscription.ts';

const EVENTS = { REBALANCING: 'consumer.rebalancing', GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash' } as const;

class FakeConsumer {
  readonly events = EVENTS;
  commits: Array<Array<{ topic: string; partition: number; offset: string }>> = [];
  listeners = new Map<string, Array<(event?: unknown) => void>>();
  disconnected = false;
  heartbeats = 0;
  runs = 0;
  /** Topics whose fetching is paused; `running: false` makes pause throw as kafkajs does before run(). */
  paused = new Set<string>();
  running = true;
  pause(topics: Array<{ topic: string }>): void {
    if (!this.running) throw new Error('Consumer group was not initialized, consumer#run must be called first');
    for (const { topic } of topics) this.paused.add(topic);
  }
  resume(topics: Array<{ topic: string }>): void {
    for (const { topic } of topics) this.paused.delete(topic);
  }
  async run(): Promise<void> {
    this.runs++;
  }
  on(event: string, fn: (event?: unknown) => void): () => void {
    const list = this.listeners.get(event) ?? [];
    list.push(fn);
    this.listeners.set(event, list);
    return () => undefined;
  }
  emit(event: string, payload?: unknown): void {
    for (const fn of this.listeners.get(event) ?? []) fn({ payload });
  }
  async commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string }>): Promise<void> {
    this.commits.push(offsets.map((o) => ({ ...o })));
  }
  async disconnect(): Promise<void> {
    this.disconnected = true;
  }
  lastCommit(partition = 0): string | undefined {
    for (let i = this.commits.length - 1; i >= 0; i--) {
      const c = this.commits[i]!.find((o) => o.partition === partition);
      if (c) return c.offset;
    }
    return undefined;
  }
}

function record(offset: number, headers: Record<string, string> = {}): KafkaMessage {
  return {
    key: null,
    value: Buffer.from(`v${offset}`),
    timestamp: String(1_700_000_000_000 + offset),
    attributes: 0,
    offset: String(offset),
    headers,
  } as KafkaMessage;
}

function setup(maxInFlight: number, onError: (err: unknown) => void = (err) => {
  throw err;
}) {
  const consumer = new FakeConsumer();
  const got: Delivery[] = [];
  const republished: Array<{ offset: string; attempts: number }> = [];
  const sub = new KafkaSubscription(
    'frames',
    'det',
    consumer as unknown as Consumer,
    ['frames', 'frames.det.retry'],
    maxInFlight,
    60_000, // the timer never fires in these tests: commits are asked for explicitly
    {
      republish: async (message, attempts) => {
        republished.push({ offset: message.offset, attempts });
      },
      onError,
    },
    (d) => got.push(d),
  );
  const beat = { fail: undefined as Error | undefined };
  const feed = (offset: number, partition = 0, headers?: Record<string, string>) =>
    sub.eachMessage({
      topic: 'frames',
      partition,
      message: record(offset, headers),
      heartbeat: async () => {
        consumer.heartbeats++;
        if (beat.fail) throw beat.fail;
      },
      pause: () => () => undefined,
    } as EachMessagePayload);
  return { consumer, got, republished, sub, feed, beat };
}

const tick = () => new Promise((r) => setImmediate(r));

/** Fails (instead of hanging) when `p` does not settle soon: the loop's own timer is unref'd. */
async function within<T>(p: Promise<T>, what: string, ms = 2000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('KafkaSubscription (no broker)', () => {
  test('a record becomes a delivery: id, headers, attempts, timestamp', async () => {
    const { got, sub, feed } = setup(5);
    await feed(7, 0, { 'conveyor-id': 'abc', 'conveyor-attempts': '3', 'x-k': 'v' });
    await feed(8);
    const [a, b] = got as [Delivery, Delivery];
    assert.equal(a.id, 'abc');
    assert.equal(a.attempts, 3);
    assert.deepEqual({ ...a.headers }, { 'x-k': 'v' });
    assert.equal(a.timestamp, 1_700_000_000_007);
    assert.equal(a.topic, 'frames');
    assert.equal(a.channel, 'det');
    assert.equal(b.id, 'frames/0/8');
    assert.equal(b.attempts, 1);
    await sub.close();
  });

  test('the fetch loop waits while maxInFlight records are unacked, and goes on after an ack', async () => {
    const { got, sub, feed } = setup(2);
    await feed(0);
    let third = false;
    const second = feed(1).then(() => (third = true));
    await tick();
    assert.equal(got.length, 2);
    assert.equal(third, false, 'eachMessage has not returned: kafkajs fetches nothing more');
    got[0]!.ack();
    await within(second, 'room after an ack');
    assert.equal(third, true);
    await sub.close();
  });

  test("pause pauses kafkajs' fetching of both topics: the loop is not held, the batch stops; resume resumes", async () => {
    const { consumer, got, sub, feed } = setup(10);
    assert.throws(() => sub.setMaxInFlight(0), { code: 'ERR_BAD_OPTIONS' });
    sub.pause();
    assert.deepEqual([...consumer.paused].sort(), ['frames', 'frames.det.retry']);
    await within(feed(0), 'a paused member returns at once (kafkajs stops the batch after this record)');
    assert.equal(got.length, 1, 'the record already fetched is handed out');
    sub.resume();
    assert.deepEqual([...consumer.paused], []);
    await within(feed(1), 'resumed');
    assert.equal(got.length, 2);
    await sub.close();
  });

  test('pause while kafkajs cannot pause (no group yet) holds the loop even with room; resume releases it', async () => {
    const errors: unknown[] = [];
    const { consumer, got, sub, feed } = setup(10, (err) => errors.push(err));
    consumer.running = false;
    sub.pause();
    assert.equal(errors.length, 1, 'the failed pause is reported');
    let returned = false;
    const p = feed(0).then(() => (returned = true));
    await tick();
    assert.equal(got.length, 1, 'the record already fetched is handed out');
    assert.equal(returned, false);
    sub.resume();
    await within(p, 'resume');
    assert.equal(returned, true);
    await sub.close();
  });

  test('a member paused when the group is joined again (kafkajs restarted it) pauses fetching again', async () => {
    const { consumer, sub } = setup(10);
    sub.pause();
    consumer.paused.clear(); // a restarted kafkajs consumer has a new, unpaused group state
    consumer.emit(EVENTS.GROUP_JOIN);
    assert.deepEqual([...consumer.paused].sort(), ['frames', 'frames.det.retry']);
    await sub.close();
  });

  test('commits only the contiguous acked run, whatever the ack order', async () => {
    const { consumer, got, sub, feed } = setup(10);
    for (const o of [0, 1, 2, 3]) await feed(o);
    got[2]!.ack();
    got[3]!.ack();
    await sub.commit();
    assert.equal(consumer.lastCommit(), undefined, 'offset 0 in flight: nothing to commit');
    got[0]!.ack();
    await sub.commit();
    assert.equal(consumer.lastCommit(), '1');
    got[1]!.ack();
    await sub.commit();
    assert.equal(consumer.lastCommit(), '4');
    const before = consumer.commits.length;
    await sub.commit();
    assert.equal(consumer.commits.length, before, 'no commit when nothing moved');
    await sub.close();
  });

  test('rebalance: commit on REBALANCING, drop in-flight on GROUP_JOIN; late acks count for nothing', async () => {
    const { consumer, got, sub, feed } = setup(10);
    for (const o of [10, 11, 12]) await feed(o);
    got[0]!.ack();
    consumer.emit(EVENTS.REBALANCING);
    await sub.commit();
    assert.equal(consumer.lastCommit(), '11');
    consumer.emit(EVENTS.GROUP_JOIN);
    got[1]!.ack(); // from the old generation
    got[2]!.ack();
    await sub.commit();
    assert.equal(consumer.lastCommit(), '11', 'late acks of dropped deliveries are not committed');
    // kafkajs resumes from the committed offset 11: the same records come again.
    await feed(11);
    await feed(12);
    got[3]!.ack();
    got[4]!.ack();
    await sub.commit();
    assert.equal(consumer.lastCommit(), '13');
    await sub.close();
  });

  test('kafkajs going back on a partition: what was in flight there is dropped, not leaked', async () => {
    const { consumer, got, sub, feed } = setup(2);
    await feed(5);
    const six = feed(6); // at the bound: waits
    await tick();
    got[0]!.ack();
    await within(six, 'room after an ack');
    // A seek back to 5 with no group event: the old 6 is dropped with it, so the new 5 fits.
    await within(feed(5), 'the new 5 handed out without waiting');
    assert.equal(got.length, 3);
    let fits = false;
    const q = feed(6).then(() => (fits = true));
    await tick();
    assert.equal(fits, false, 'new 5 and new 6 in flight: at the bound');
    got[2]!.ack();
    await within(q, 'room after acking the new 5');
    got[3]!.ack();
    got[1]!.ack(); // the old 6: dropped, counts for nothing
    await sub.commit();
    assert.equal(consumer.lastCommit(), '7');
    await sub.close();
  });

  test('nack: copy to the retry topic with attempts + 1 after the delay, then the original is acked', async () => {
    const { consumer, got, republished, sub, feed } = setup(10);
    await feed(0, 0, { 'conveyor-attempts': '2' });
    const start = Date.now();
    got[0]!.nack(60);
    got[0]!.ack(); // ignored: already settled
    await sub.commit();
    assert.equal(republished.length, 0);
    assert.equal(consumer.lastCommit(), undefined);
    await within(
      (async () => {
        while (republished.length === 0) await new Promise((r) => setTimeout(r, 5));
      })(),
      'the retry copy',
    );
    assert.ok(Date.now() - start >= 55);
    assert.deepEqual(republished, [{ offset: '0', attempts: 3 }]);
    await tick();
    await sub.commit();
    assert.equal(consumer.lastCommit(), '1');
    await sub.close();
  });

  test('close commits what was acked, stops handing out, and leaves the group', async () => {
    const { consumer, got, sub, feed } = setup(10);
    await feed(0);
    await feed(1);
    got[0]!.ack();
    await sub.close();
    assert.equal(consumer.lastCommit(), '1');
    assert.equal(consumer.disconnected, true);
    await feed(2);
    assert.equal(got.length, 2, 'nothing handed out after close');
    await sub.close(); // idempotent
  });

  test('a full member still joins a rebalance: a rebalancing heartbeat ends the wait by throwing (kafkajs rejoins)', async () => {
    const { sub, feed, beat } = setup(2);
    await feed(0);
    const waiting = feed(1);
    beat.fail = Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
    await within(
      assert.rejects(waiting, { type: 'REBALANCE_IN_PROGRESS' }),
      'the wait ends on a rebalance',
      3000,
    );
    await sub.close();
  });

  test('a member kafkajs will not restart after a crash is reported and started again; not once closed', async () => {
    const reported: unknown[] = [];
    const { consumer, sub } = setup(5, (err) => reported.push(err));
    await sub.start();
    assert.equal(consumer.runs, 1);
    consumer.emit(EVENTS.CRASH, { error: new Error('INVALID_REQUEST'), restart: true });
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(consumer.runs, 1, 'kafkajs restarts it itself');
    consumer.emit(EVENTS.CRASH, { error: new Error('INVALID_REQUEST'), restart: false });
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(consumer.runs, 2, 'started again');
    assert.equal((reported[0] as Error).message, 'INVALID_REQUEST');
    await sub.close();
    consumer.emit(EVENTS.CRASH, { error: new Error('later'), restart: false });
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(consumer.runs, 2, 'a closed subscription stays closed');
  });
});
