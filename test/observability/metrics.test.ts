/**
 * /metrics through prom-client (issue 11): conventional names and labels from any app, the
 * broker and the gateway, read at scrape time from the counters the runtime keeps.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { ConveyorError } from '../../src/core/errors.ts';
import { defineMessage } from '../../src/core/schema.ts';
import { LatencyHistogram } from '../../src/observability/histogram.ts';
import { createLogger, levelFromEnv } from '../../src/observability/log.ts';
import { app } from '../../src/runtime/app.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { testBroker } from '../server/helpers.ts';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('an app counts confirmed publishes, each outcome, handler time and what it holds', async (t) => {
  const topic = uniqueName('met');
  const Job = defineMessage({ name: 'job', topic, schema: z.object({ n: z.number() }) });
  const pipeline = app({ url: `memory://${uniqueName('m')}`, deadLetterLog: false });
  t.after(() => pipeline.close());
  let seen = 0;
  await pipeline.consume(Job, { channel: 'work', retry: { attempts: 2, backoff: { initialMs: 1, maxMs: 1 } } }, async (job) => {
    seen++;
    if (job.n === 3) throw new ConveyorError('ERR_HANDLER', 'three is bad', { retryable: true });
    await new Promise((r) => setTimeout(r, 20));
  });
  await pipeline.publishMany(Job, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  await pipeline.publish(Job, { n: 4 });
  await waitFor(() => seen >= 5, 'four messages, one tried twice', 5000);
  await waitFor(async () => sample(await pipeline.metrics(), `conveyor_messages_consumed_total{topic="${topic}",channel="work",outcome="dead"}`) === 1, 'the dead letter counted');

  const text = await pipeline.metrics();
  const labels = `topic="${topic}",channel="work"`;
  assert.equal(sample(text, `conveyor_messages_published_total{topic="${topic}"}`), 4);
  assert.equal(sample(text, `conveyor_messages_consumed_total{${labels},outcome="processed"}`), 3);
  assert.equal(sample(text, `conveyor_messages_consumed_total{${labels},outcome="retried"}`), 1);
  assert.equal(sample(text, `conveyor_messages_consumed_total{${labels},outcome="duplicate"}`), 0);
  assert.equal(sample(text, `conveyor_handler_duration_seconds_count{${labels}}`), 5);
  // Three handlers slept 20 ms: none of them is in the buckets below 10 ms.
  assert.ok(sample(text, `conveyor_handler_duration_seconds_bucket{${labels},le="0.01"}`)! <= 2, text);
  assert.equal(sample(text, `conveyor_handler_duration_seconds_bucket{${labels},le="+Inf"}`), 5);
  assert.ok(sample(text, `conveyor_handler_duration_seconds_sum{${labels}}`)! >= 0.06);
  assert.equal(sample(text, `conveyor_in_flight{${labels}}`), 0);
  assert.match(text, /^# TYPE conveyor_handler_duration_seconds histogram$/m);
  assert.match(text, /^# TYPE conveyor_messages_consumed_total counter$/m);

  // The registry merges with an application's own, as prom-client users expect.
  const own = new Registry();
  const merged = Registry.merge([pipeline.metricsRegistry(), own]);
  assert.match(await merged.metrics(), /conveyor_messages_published_total/);
});

test('the broker serves /metrics: depth, in flight, requeues and clients per topic and channel', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName('met');
  const channel = broker.engine.topic(topic).channel('archive');
  broker.engine.topic(topic).publish(Array.from({ length: 5 }, () => ({ body: Buffer.from('x') })));
  const received: string[] = [];
  const consumer = channel.subscribe({ deliver: (m) => received.push(m.id) });
  consumer.setReady(2);
  await waitFor(() => received.length === 2, 'two in flight');
  const res = await fetch(`http://${broker.httpAddress}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const labels = `topic="${topic}",channel="archive"`;
  assert.equal(sample(text, `conveyor_topic_messages_total{topic="${topic}"}`), 5);
  assert.equal(sample(text, `conveyor_depth{${labels}}`), 3);
  assert.equal(sample(text, `conveyor_channel_in_flight{${labels}}`), 2);
  assert.equal(sample(text, `conveyor_channel_consumers{${labels}}`), 1);
  assert.equal(sample(text, 'conveyor_broker_clients'), 0);
  consumer.requeue(received[0]!, 0);
  assert.equal(sample(await (await fetch(`http://${broker.httpAddress}/metrics`)).text(), `conveyor_channel_requeued_total{${labels}}`), 1);
  consumer.close();
});

test('the latency histogram answers quantiles as histogram_quantile would', () => {
  const h = new LatencyHistogram();
  assert.equal(h.quantile(0.5), 0);
  for (let i = 0; i < 99; i++) h.observe(0.003); // bucket (0.0025, 0.005]
  h.observe(2); // bucket (1, 2.5]
  assert.ok(h.quantile(0.5) > 0.0025 && h.quantile(0.5) <= 0.005, String(h.quantile(0.5)));
  assert.ok(h.quantile(0.999) > 1 && h.quantile(0.999) <= 2.5, String(h.quantile(0.999)));
  h.observe(60);
  assert.equal(h.quantile(1), 10, 'past the last bound: the last bound');
  assert.equal(h.count, 101);
});

test('structured logs: one JSON line per event, filtered by level; a bad level is refused', () => {
  const lines: string[] = [];
  const log = createLogger('broker', { level: 'info', write: (l) => lines.push(l) });
  log.debug('not shown');
  log.info('listening', { tcp: '127.0.0.1:4150' });
  log.error('failed', { error: new ConveyorError('ERR_TRANSPORT', 'down') });
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0]!);
  assert.equal(first.level, 'info');
  assert.equal(first.component, 'broker');
  assert.equal(first.msg, 'listening');
  assert.equal(first.tcp, '127.0.0.1:4150');
  assert.ok(!Number.isNaN(Date.parse(first.time)));
  assert.deepEqual(JSON.parse(lines[1]!).error, { message: 'down', code: 'ERR_TRANSPORT' });
  assert.equal(levelFromEnv('WARN'), 'warn');
  assert.equal(levelFromEnv(undefined), 'info');
  assert.throws(() => levelFromEnv('loud'), /CONVEYOR_LOG_LEVEL=loud/);
});
