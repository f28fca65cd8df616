/** mqtt:// bound to MQTT topics it did not name: per subscription, filters, and what is refused. */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import mqtt from 'mqtt';
import { parseTransportUrl } from '../../src/core/url.ts';
import { MqttTransport } from '../../src/transports/mqtt/index.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';

type Err = Error & { code?: string };
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function open(t: TestContext, query = ''): Promise<MqttTransport | undefined> {
  const base = await requireService(t, 'mqtt');
  if (!base) return undefined;
  const transport = await MqttTransport.connect(parseTransportUrl(`${base}${query}`));
  t.after(() => transport.close());
  return transport;
}

describe('mqtt:// bind to existing topics', () => {
  test('per subscription: bind.topic is a filter for that subscription only; a foreign QoS 1 publisher feeds it; mqtt-topic tells where, retries too', async (t) => {
    const root = uniqueName('site');
    const transport = await open(t);
    if (!transport) return;
    const got: string[] = [];
    const where: string[] = [];
    const sub = await transport.subscribe(uniqueName('doors'), 'alarm', { maxInFlight: 10, bind: { topic: `${root}/+/door/#` } }, (d) => {
      where.push(`${dec(d.body)}@${d.headers['mqtt-topic']}#${d.attempts}`);
      if (dec(d.body) === 'front' && d.attempts === 1) return d.nack(0);
      got.push(dec(d.body));
      d.ack();
    });
    t.after(() => sub.close());
    const raw = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: uniqueName('raw') });
    t.after(() => raw.endAsync());
    await raw.publishAsync(`${root}/b1/door/front`, 'front', { qos: 1 });
    await raw.publishAsync(`${root}/b1/window/left`, 'window', { qos: 1 });
    await raw.publishAsync(`${root}/b2/door`, 'b2', { qos: 1 }); // '#' matches the parent level too
    await waitFor(() => got.length === 2, 'the two door events', 10_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got.sort(), ['b2', 'front']);
    assert.deepEqual(where.sort(), [`b2@${root}/b2/door#1`, `front@${root}/b1/door/front#1`, `front@${root}/b1/door/front#2`]);
  });

  test("a foreign QoS 0 publisher (paho's default) is delivered, not dropped; acking it sends nothing", async (t) => {
    const root = uniqueName('qos0');
    const topic = uniqueName('readings');
    const transport = await open(t, `?bind.${topic}=${encodeURIComponent(`${root}/#`)}`);
    if (!transport) return;
    const got: string[] = [];
    const sub = await transport.subscribe(topic, 'c', { maxInFlight: 2 }, (d) => {
      got.push(dec(d.body));
      d.ack();
    });
    t.after(() => sub.close());
    const raw = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: uniqueName('raw') });
    t.after(() => raw.endAsync());
    for (let n = 0; n < 20; n++) await raw.publishAsync(`${root}/s${n}`, `r${n}`, { qos: 0 });
    await waitFor(() => got.length === 20, '20 QoS 0 readings (maxInFlight 2: acks make room)', 10_000);
    assert.deepEqual(got, Array.from({ length: 20 }, (_, n) => `r${n}`));
  });

  test('a filter cannot be published to; a channel binding and a bad filter are ERR_BAD_OPTIONS', async (t) => {
    const transport = await open(t, '?bind.all=x/%23');
    if (!transport) return;
    await assert.rejects(transport.publish('all', [{ body: new Uint8Array([1]) }]), (e: Err) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('x/#'));
    await assert.rejects(
      transport.subscribe('t', 'c', { maxInFlight: 1, bind: { topic: 'a/b#', channel: 'q' } }, () => {}),
      (e: Err) => e.code === 'ERR_BAD_OPTIONS' && e.message.includes('bind.topic') && e.message.includes('bind.channel'),
    );
    // A refused subscribe takes no session slot: the next one of the channel still gets index 0.
    const sub = await transport.subscribe(uniqueName('t'), 'c', { maxInFlight: 1 }, () => {});
    await sub.close();
  });
});
