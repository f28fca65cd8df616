/**
 * OpenTelemetry (issue 11): with an SDK registered (the in-memory exporter), one trace runs
 * from a gateway POST through the broker to the batch sink, and on every transport the
 * consumer's span is the child of the publisher's, carried by W3C traceparent in the headers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import { defineMessage } from '../../src/core/schema.ts';
import { gateway } from '../../src/gateway/index.ts';
import { app } from '../../src/runtime/app.ts';
import { requireService, type ServiceName, uniqueName, waitFor } from '../helpers/index.ts';
import { cleanupTopic } from '../helpers/cleanup.ts';
import { kafkaSkipReason, kafkaUrl } from '../helpers/kafka-mock.ts';
import { testBroker } from '../server/helpers.ts';

const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

const spans = (name: string, traceId: string): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.name === name && s.spanContext().traceId === traceId);
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

test('one trace from a gateway POST through the broker to the batch sink', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName('tr');
  const Ev = defineMessage({ name: 'ev', topic, schema: z.object({ n: z.number() }) });
  const pipeline = app({ url: `nsq://${broker.tcpAddress}` });
  t.after(() => pipeline.close());
  const stored: number[] = [];
  await pipeline.consumeBatch(Ev, { channel: 'archive', batch: { maxSize: 10, maxWaitMs: 20 } }, async (values) => {
    stored.push(...values.map((v) => v.n));
  });
  const gw = await gateway({ transport: pipeline, topics: { [topic]: Ev } });
  t.after(() => gw.close());

  const clientTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const clientSpan = '00f067aa0ba902b7';
  const res = await fetch(`${gw.url}/v1/topics/${topic}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${clientTrace}-${clientSpan}-01` },
    body: JSON.stringify({ n: 7 }),
  });
  assert.equal(res.status, 201);
  await waitFor(() => spans(`process ${topic}`, clientTrace).length === 1, 'the sink span');
  assert.deepEqual(stored, [7]);

  const [server] = spans('POST /v1/topics/{topic}', clientTrace);
  const [send] = spans(`send ${topic}`, clientTrace);
  const [process] = spans(`process ${topic}`, clientTrace);
  assert.ok(server && send && process, exporter.getFinishedSpans().map((s) => s.name).join(', '));
  assert.equal(server.kind, SpanKind.SERVER);
  assert.equal(parentOf(server), clientSpan, 'the gateway continues the caller’s trace');
  assert.equal(send.kind, SpanKind.PRODUCER);
  assert.equal(parentOf(send), server.spanContext().spanId);
  assert.equal(send.attributes['messaging.destination.name'], topic);
  assert.equal(send.attributes['messaging.system'], 'nsq');
  assert.equal(process.kind, SpanKind.CONSUMER);
  assert.equal(parentOf(process), send.spanContext().spanId, 'the sink’s span is the child of the publish');
  assert.equal(process.attributes['messaging.consumer.group.name'], 'archive');
  assert.equal(process.attributes['messaging.batch.message_count'], 1);
  assert.deepEqual(
    process.links.map((l) => l.context.spanId),
    [send.spanContext().spanId],
  );
});

const ENGINES: Array<{ name: string; service?: ServiceName; url: (t: import('node:test').TestContext) => Promise<string | undefined> }> = [
  { name: 'memory', url: async () => `memory://${uniqueName('tr')}` },
  { name: 'nsq', url: async (t) => `nsq://${(await testBroker(t)).tcpAddress}` },
  { name: 'amqp', url: (t) => requireService(t, 'rabbitmq') },
  { name: 'redis', url: (t) => requireService(t, 'redis') },
  { name: 'nats', url: (t) => requireService(t, 'nats') },
  { name: 'mqtt', url: (t) => requireService(t, 'mqtt') },
  { name: 'kafka', url: () => kafkaUrl() },
];

for (const engine of ENGINES) {
  const skip = engine.name === 'kafka' ? kafkaSkipReason() : undefined;
  test(`${engine.name}: the consumer's span is the child of the publisher's (traceparent in the headers)`, { skip, timeout: 60_000 }, async (t) => {
    const url = await engine.url(t);
    if (url === undefined) return;
    const topic = uniqueName('tr');
    const Ev = defineMessage({ name: 'ev', topic, schema: z.object({ n: z.number() }) });
    const pipeline = app({ url });
    t.after(() => pipeline.close());
    cleanupTopic(t, url, topic, ['work']);
    let headers: Record<string, string> | undefined;
    await pipeline.consume(Ev, { channel: 'work' }, async (_v, ctx) => {
      headers = { ...ctx.headers };
    });
    const root = trace.getTracer('test').startSpan('root');
    const rootTrace = root.spanContext().traceId;
    await context.with(trace.setSpan(context.active(), root), () => pipeline.publish(Ev, { n: 1 }));
    root.end();
    await waitFor(() => spans(`process ${topic}`, rootTrace).length === 1, `the process span on ${engine.name}`, 30_000);
    const [send] = spans(`send ${topic}`, rootTrace);
    const [process] = spans(`process ${topic}`, rootTrace);
    assert.equal(parentOf(send!), root.spanContext().spanId);
    assert.equal(parentOf(process!), send!.spanContext().spanId);
    assert.match(headers?.traceparent ?? '', new RegExp(`^00-${rootTrace}-${send!.spanContext().spanId}-01$`));
  });
}
