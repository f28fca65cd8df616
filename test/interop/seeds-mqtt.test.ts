/**
 * MQTT topics that Conveyor did not name, and peers that know nothing of Conveyor: paho-mqtt 1.x
 * (Debian's python3-paho-mqtt, MQTT 3.1.1) as its getting-started examples write a sensor and a
 * dashboard (test/interop/foreign/mqtt_*.py, only the topic root substituted per run). Conveyor
 * binds to their topic and wildcard filter by name (`?bind.`), 200 of 200 each way.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bytesMessage } from '../../src/core/schema.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { app } from '../../src/runtime/app.ts';
import { parseMqttOptions } from '../../src/transports/mqtt/options.ts';
import { requireService, uniqueName, waitFor } from '../helpers/index.ts';
import { requirePython } from './python.ts';
import { runSeed, text } from './seeds.ts';

const COUNT = 200;

describe('foreign MQTT peers (paho sensor and dashboard, wildcard filter)', () => {
  test('options: bind.<topic> takes a topic or filter as is; bad filters and channel bindings are refused together', () => {
    const o = parseMqttOptions(parseTransportUrl('mqtt://h?bind.temps=plant/%2B/temperature&bind.all=plant/%23&envelope=false'));
    assert.equal(o.topics.get('temps'), 'plant/+/temperature');
    assert.equal(o.topics.get('all'), 'plant/#');
    assert.equal(o.envelope, false);
    assert.throws(
      () => parseMqttOptions(parseTransportUrl('mqtt://h?bind.a=x/%23/y&bind.b=x%2By&bind.c=&bind.d:e=q&bind.f=%24share/g/x&envelope=no')),
      (e: Error & { code?: string }) => e.code === 'ERR_BAD_OPTIONS' && ['bind.a', 'bind.b', 'bind.c', 'bind.d:e', 'bind.f', 'envelope'].every((k) => e.message.includes(k)),
    );
  });

  test(`paho's sensor → a Conveyor channel bound to the filter plant/+/temperature: ${COUNT}/${COUNT}`, async (t) => {
    const base = await requireService(t, 'mqtt');
    if (!base || !requirePython(t)) return;
    const root = uniqueName('plant');
    // A unique topic too: the channel's sessions (and its retry topic) outlive the test.
    const topic = uniqueName('temps');
    const a = app({ url: `${base}?bind.${topic}=${encodeURIComponent(`${root}/+/temperature`)}` });
    t.after(() => a.close());
    const got: string[] = [];
    await a.consume(bytesMessage('temp', { topic }), { channel: 'dashboard', maxInFlight: 50 }, (body) => {
      got.push(Buffer.from(body).toString('utf8'));
    });
    const sensor = runSeed(t, '../foreign/mqtt_sensor.py', '"plant/', `"${root}/`);
    for (let n = 0; n < COUNT; n++) sensor.child.stdin!.write(`${text(n)}\n`);
    sensor.child.stdin!.end();
    const { stderr } = await sensor.exit;
    assert.match(stderr, /EOFError/, 'the sensor ends only at the end of its input');
    await waitFor(() => got.length >= COUNT, `${COUNT} readings from paho`, 20_000);
    // One shared subscription, one session: MQTT keeps a publisher's QoS 1 order to it.
    assert.deepEqual(got, Array.from({ length: COUNT }, (_, n) => text(n)));
  });

  test(`a Conveyor producer (envelope=false) bound to plant/kitchen/temperature → paho's dashboard on plant/+/temperature: ${COUNT}/${COUNT}`, async (t) => {
    const base = await requireService(t, 'mqtt');
    if (!base || !requirePython(t)) return;
    const root = uniqueName('plant');
    const dashboard = runSeed(t, '../foreign/mqtt_dashboard.py', '"plant/', `"${root}/`);
    await waitFor(() => dashboard.lines.includes('subscribed') || dashboard.child.exitCode !== null, 'the dashboard subscribed', 20_000);
    assert.equal(dashboard.child.exitCode, null, 'the dashboard is running');
    const a = app({ url: `${base}?bind.kitchen=${encodeURIComponent(`${root}/kitchen/temperature`)}&envelope=false` });
    t.after(() => a.close());
    const Temp = bytesMessage('temp', { topic: 'kitchen' });
    for (let n = 0; n < COUNT; n++) await a.publish(Temp, new TextEncoder().encode(text(n)));
    const readings = () => dashboard.lines.filter((l) => l !== 'subscribed');
    await waitFor(() => readings().length >= COUNT, `${COUNT} lines from the dashboard`, 20_000);
    assert.deepEqual(readings(), Array.from({ length: COUNT }, (_, n) => `${root}/kitchen/temperature: ${text(n)}`));
  });
});
