/** Dead-letter replay over the Transport contract: publish first, ack after the confirm, never lost. */
import assert from 'node:assert/strict';
import test from 'node:test';
import { codecs } from '../../src/core/codecs/index.ts';
import { ConveyorError } from '../../src/core/errors.ts';
import type { OutgoingMessage } from '../../src/core/message.ts';
import type { Transport } from '../../src/core/transport.ts';
import { showBody } from '../../src/dashboard/decode.ts';
import { listDeadLetters, replayDeadLetters } from '../../src/dashboard/dlq.ts';
import { RateHistory } from '../../src/dashboard/history.ts';
import { Engine } from '../../src/engine/engine.ts';
import { MemoryTransport } from '../../src/transports/memory/transport.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';

function deadLetter(topic: string, id: string, n: number): OutgoingMessage {
  return {
    id,
    body: codecs.json.encode({ n }),
    headers: { 'content-type': 'application/json', 'conveyor-id': id, 'conveyor-dead-topic': topic, 'conveyor-dead-code': 'ERR_SCHEMA', 'conveyor-dead-reason': 'bad', 'app-header': 'kept' },
  };
}

test('a replay whose publish fails leaves every dead letter where it was', async (t) => {
  const engine = new Engine();
  t.after(() => engine.close());
  const transport = new MemoryTransport(engine);
  const topic = uniqueName('fragile');
  await transport.publish(`${topic}.dead`, [deadLetter(topic, 'a', 1), deadLetter(topic, 'b', 2)]);
  const failing: Transport = {
    kind: transport.kind,
    features: transport.features,
    subscribe: (...args) => transport.subscribe(...args),
    close: async () => {},
    publish: async (to, messages) => {
      if (to === topic) throw new ConveyorError('ERR_TRANSPORT', 'broker down');
      return transport.publish(to, messages);
    },
  };
  await assert.rejects(replayDeadLetters(failing, topic, 'all', { idleMs: 30 }), /broker down/);
  const dlq = engine.topic(`${topic}.dead`).channel('dlq');
  await waitFor(() => dlq.stats().depth === 2 && dlq.stats().in_flight_count === 0, 'both letters back');
  assert.equal(engine.getTopic(topic)?.stats().message_count ?? 0, 0, 'nothing reached the topic');

  // With the broker back, the replay goes through: the original's headers without the dead-letter ones.
  const got: { id: string; headers: Record<string, string> }[] = [];
  await transport.subscribe(topic, 'w', { maxInFlight: 10 }, (d) => {
    got.push({ id: d.id, headers: { ...d.headers } });
    d.ack();
  });
  const result = await replayDeadLetters(transport, topic, 'all', { idleMs: 30 });
  assert.deepEqual(result.done.sort(), ['a', 'b']);
  await waitFor(() => got.length === 2, 'both replayed');
  assert.deepEqual(got.map((g) => g.id).sort(), ['a', 'b']);
  assert.equal(got[0]!.headers['app-header'], 'kept');
  assert.equal(Object.keys(got[0]!.headers).filter((k) => k.startsWith('conveyor-dead-')).length, 0);
  assert.equal(dlq.stats().depth, 0);
  await transport.close();
});

test('listing over a transport gives every letter back', async (t) => {
  const engine = new Engine();
  t.after(() => engine.close());
  const transport = new MemoryTransport(engine);
  const topic = uniqueName('listed');
  await transport.publish(`${topic}.dead`, [deadLetter(topic, 'x', 1), deadLetter(topic, 'y', 2), deadLetter(topic, 'z', 3)]);
  const two = await listDeadLetters(transport, topic, { limit: 2, idleMs: 30 });
  assert.deepEqual(two.map((l) => l.id), ['x', 'y']);
  assert.equal(two[0]!.code, 'ERR_SCHEMA');
  const dlq = engine.topic(`${topic}.dead`).channel('dlq');
  await waitFor(() => dlq.stats().depth === 3 && dlq.stats().in_flight_count === 0, 'all three back');
  await assert.rejects(listDeadLetters(transport, topic, { limit: 0 }), /limit must be an integer/);
  await transport.close();
});

test('bodies are shown as JSON whatever the codec, bytes as hex; rates are differences of counts', () => {
  const msgpack = showBody(codecs.msgpack.encode({ a: 1, big: 2n ** 60n }), { 'content-type': 'application/msgpack' });
  assert.equal(msgpack.format, 'msgpack');
  assert.deepEqual(msgpack.json, { a: 1, big: (2n ** 60n).toString() });
  const cbor = showBody(codecs.cbor.encode({ bytes: new Uint8Array([1, 255]), when: new Date(0) }), {});
  assert.deepEqual(cbor.json, { bytes: { $hex: '01ff' }, when: '1970-01-01T00:00:00.000Z' });
  const unknown = showBody(new Uint8Array([1]), { 'content-type': 'text/x-weird' });
  assert.equal(unknown.hex, '01');
  assert.match(unknown.error!, /no codec/);

  const h = new RateHistory();
  for (const [i, n] of [0, 10, 30, 30].entries()) h.sample(new Map([['t', n]]), i * 1000);
  assert.deepEqual(h.rates('t'), [10, 20, 0]);
  assert.equal(h.rate('t'), 0);
  h.sample(new Map([['t', 40]]), 3500);
  assert.equal(h.rate('t'), 20, 'per second, whatever the interval');
  for (let i = 0; i < 100; i++) h.sample(new Map([['t', 40 + i]]), 4000 + i * 1000);
  assert.equal(h.rates('t').length, 60, 'the last minute only');
  h.sample(new Map());
  assert.deepEqual(h.rates('t'), [], 'a deleted topic is forgotten');
});
