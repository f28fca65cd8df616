/**
 * nsq's own nsq_stat reads the broker's /stats as it reads nsqd's (when NSQ_STAT_BIN names a
 * binary built from nsq's source; nsqadmin is in lookupd.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnChild } from '../helpers/child.ts';
import { uniqueName } from '../helpers/index.ts';
import { testBroker } from './helpers.ts';

const NSQ_STAT = process.env.NSQ_STAT_BIN;

test('nsq_stat shows a channel’s depth, in flight and message count', {
  skip: NSQ_STAT ? false : 'no nsq_stat: set NSQ_STAT_BIN (built from nsq source)',
}, async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName('st');
  const channel = broker.engine.topic(topic).channel('c');
  broker.engine.topic(topic).publish(Array.from({ length: 9 }, () => ({ body: Buffer.from('x') })));
  const consumer = channel.subscribe({ deliver: () => {} });
  consumer.setReady(4);
  t.after(() => consumer.close());
  const run = spawnChild(NSQ_STAT!, [`--nsqd-http-address=${broker.httpAddress}`, `--topic=${topic}`, '--channel=c', '--interval=100ms', '--count=1']);
  assert.equal(await run.done, 0, run.err());
  // ingress egress | total mem disk inflt def | req t-o msgs clients
  const row = run.out().trim().split('\n').pop()!.replace('|', ' ').replace('|', ' ').trim().split(/\s+/).map(Number);
  assert.deepEqual(row.slice(2), [5, 5, 0, 4, 0, 0, 0, 9, 1], run.out());
});
