/**
 * nsqd's HTTP API: every endpoint, its status codes and `{"message": CODE}` errors, /stats in
 * nsqd's JSON shape, /mpub in both formats, and body limits enforced before the body is read.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, test } from 'node:test';
import { uniqueName } from '../helpers/index.ts';
import { client, identify, subscribe, testBroker } from './helpers.ts';
import { cmd, mpubBody } from './wire.ts';

async function call(
  base: string,
  method: string,
  path: string,
  body?: string | Buffer,
): Promise<{ status: number; text: string; json: any; headers: Headers }> {
  const res = await fetch(`http://${base}${path}`, { method, body });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, headers: res.headers };
}

test('/ping answers OK; /info names the version and both ports', async (t) => {
  const broker = await testBroker(t);
  const ping = await call(broker.httpAddress, 'GET', '/ping');
  assert.equal(ping.status, 200);
  assert.equal(ping.text, 'OK');
  const info = await call(broker.httpAddress, 'GET', '/info');
  assert.equal(info.status, 200);
  assert.equal(typeof info.json.version, 'string');
  assert.equal(info.json.tcp_port, Number(broker.tcpAddress.split(':').pop()));
  assert.equal(info.json.http_port, Number(broker.httpAddress.split(':').pop()));
  assert.equal(typeof info.json.start_time, 'number');
});

test('unknown paths are 404 NOT_FOUND, wrong methods 405 METHOD_NOT_ALLOWED', async (t) => {
  const broker = await testBroker(t);
  const missing = await call(broker.httpAddress, 'GET', '/nope');
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json, { message: 'NOT_FOUND' });
  const wrong = await call(broker.httpAddress, 'GET', '/pub?topic=x');
  assert.equal(wrong.status, 405);
  assert.deepEqual(wrong.json, { message: 'METHOD_NOT_ALLOWED' });
});

describe('/pub', () => {
  test('publishes the body, defer= delays it; TCP consumers receive it', async (t) => {
    const broker = await testBroker(t);
    const topic = uniqueName();
    const c = await client(t, broker);
    await subscribe(c, topic, 'ch', 5);
    const now = await call(broker.httpAddress, 'POST', `/pub?topic=${topic}`, 'hello');
    assert.equal(now.status, 200);
    assert.equal(now.text, 'OK');
    assert.equal((await c.message()).body.toString(), 'hello');
    const sent = Date.now();
    assert.equal((await call(broker.httpAddress, 'POST', `/pub?topic=${topic}&defer=250`, 'later')).status, 200);
    assert.equal((await c.message(2000)).body.toString(), 'later');
    assert.ok(Date.now() - sent >= 230);
  });

  test('errors: MISSING_ARG_TOPIC, INVALID_TOPIC, MSG_EMPTY, INVALID_DEFER (400), MSG_TOO_BIG (413)', async (t) => {
    const broker = await testBroker(t, { maxMsgSize: 10 });
    const at = broker.httpAddress;
    const cases: [string, string | undefined, number, string][] = [
      ['/pub', 'x', 400, 'MISSING_ARG_TOPIC'],
      ['/pub?topic=bad!name', 'x', 400, 'INVALID_TOPIC'],
      [`/pub?topic=${uniqueName()}`, '', 400, 'MSG_EMPTY'],
      [`/pub?topic=${uniqueName()}&defer=-1`, 'x', 400, 'INVALID_DEFER'],
      [`/pub?topic=${uniqueName()}&defer=soon`, 'x', 400, 'INVALID_DEFER'],
      [`/pub?topic=${uniqueName()}&defer=3600001`, 'x', 400, 'INVALID_DEFER'],
      [`/pub?topic=${uniqueName()}`, 'x'.repeat(11), 413, 'MSG_TOO_BIG'],
    ];
    for (const [path, body, status, code] of cases) {
      const res = await call(at, 'POST', path, body);
      assert.equal(res.status, status, path);
      assert.deepEqual(res.json, { message: code }, path);
    }
  });

  test('a body over the limit without Content-Length is cut off with 413', async (t) => {
    const broker = await testBroker(t, { maxMsgSize: 1024 });
    const [host, port] = broker.httpAddress.split(':');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host, port: Number(port), method: 'POST', path: `/pub?topic=${uniqueName()}` }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      // Chunked, so the server cannot know the size in advance; keep sending past the limit.
      for (let i = 0; i < 8; i++) req.write(Buffer.alloc(512, 120));
      req.end();
    });
    assert.equal(status, 413);
  });
});

describe('/mpub', () => {
  test('newline-separated bodies, empty lines skipped', async (t) => {
    const broker = await testBroker(t);
    const topic = uniqueName();
    const c = await client(t, broker);
    await subscribe(c, topic, 'ch', 10);
    const res = await call(broker.httpAddress, 'POST', `/mpub?topic=${topic}`, 'a\nbb\n\nccc\n');
    assert.equal(res.status, 200);
    assert.equal(res.text, 'OK');
    const got = [];
    for (let i = 0; i < 3; i++) got.push((await c.message()).body.toString());
    assert.deepEqual(got, ['a', 'bb', 'ccc']);
    assert.equal(await c.quiet(100), true);
  });

  test('binary=true: [count][size][body]..., binary bodies with newlines intact', async (t) => {
    const broker = await testBroker(t);
    const topic = uniqueName();
    const c = await client(t, broker);
    await subscribe(c, topic, 'ch', 10);
    const bodies = [Buffer.from('line\nbreak'), Buffer.from([0, 255, 10])];
    const res = await call(broker.httpAddress, 'POST', `/mpub?topic=${topic}&binary=true`, mpubBody(bodies));
    assert.equal(res.status, 200);
    assert.deepEqual((await c.message()).body, bodies[0]);
    assert.deepEqual((await c.message()).body, bodies[1]);
  });

  test('limits: BODY_TOO_BIG and MSG_TOO_BIG are 413; bad binary bodies 413 BAD_BODY / BAD_MESSAGE', async (t) => {
    const broker = await testBroker(t, { maxMsgSize: 10, maxBodySize: 100 });
    const at = broker.httpAddress;
    const topic = uniqueName();
    const big = await call(at, 'POST', `/mpub?topic=${topic}`, 'x\n'.repeat(60));
    assert.equal(big.status, 413);
    assert.deepEqual(big.json, { message: 'BODY_TOO_BIG' });
    const long = await call(at, 'POST', `/mpub?topic=${topic}`, `ok\n${'y'.repeat(11)}`);
    assert.equal(long.status, 413);
    assert.deepEqual(long.json, { message: 'MSG_TOO_BIG' });
    const zero = await call(at, 'POST', `/mpub?topic=${topic}&binary=true`, Buffer.alloc(4));
    assert.deepEqual([zero.status, zero.json], [413, { message: 'BAD_BODY' }]);
    const lying = mpubBody(['abc']);
    lying.writeInt32BE(9, 4);
    const lie = await call(at, 'POST', `/mpub?topic=${topic}&binary=true`, lying);
    assert.deepEqual([lie.status, lie.json], [413, { message: 'BAD_MESSAGE' }]);
    const stats = await call(at, 'GET', `/stats?format=json&topic=${topic}`);
    assert.equal(stats.json.topics[0]?.message_count ?? 0, 0, 'nothing of a refused batch is published');
  });
});

describe('/stats', () => {
  test('JSON in nsqd shape with topics, channels, clients and producers; topic= and channel= filter', async (t) => {
    const broker = await testBroker(t);
    const topic = uniqueName();
    const c = await client(t, broker);
    await identify(c, { client_id: 'consumer-1' });
    await subscribe(c, topic, 'ch', 1);
    const p = await client(t, broker);
    p.write(cmd(`MPUB ${topic}`, mpubBody(['a', 'bb', 'ccc'])));
    assert.equal(await p.response(), 'OK');
    await c.message();
    await call(broker.httpAddress, 'POST', `/channel/create?topic=${topic}&channel=idle`);
    await call(broker.httpAddress, 'POST', `/topic/create?topic=${uniqueName('other')}`);

    const all = await call(broker.httpAddress, 'GET', '/stats?format=json');
    assert.equal(all.status, 200);
    for (const key of ['version', 'health', 'start_time', 'topics', 'producers']) assert.ok(key in all.json, key);
    assert.equal(all.json.health, 'OK');
    assert.ok(all.json.topics.length >= 2);

    const one = await call(broker.httpAddress, 'GET', `/stats?format=json&topic=${topic}`);
    assert.equal(one.json.topics.length, 1);
    const t0 = one.json.topics[0];
    assert.equal(t0.topic_name, topic);
    for (const key of ['depth', 'backend_depth', 'message_count', 'message_bytes', 'paused', 'channels']) {
      assert.ok(key in t0, `topic.${key}`);
    }
    assert.equal(t0.message_count, 3);
    assert.equal(t0.message_bytes, 6);
    const ch = t0.channels.find((x: any) => x.channel_name === 'ch');
    for (const key of [
      'depth',
      'backend_depth',
      'in_flight_count',
      'deferred_count',
      'message_count',
      'requeue_count',
      'timeout_count',
      'clients',
      'paused',
    ]) {
      assert.ok(key in ch, `channel.${key}`);
    }
    assert.equal(ch.in_flight_count, 1);
    assert.equal(ch.depth, 2);
    assert.equal(ch.clients.length, 1);
    assert.equal(ch.clients[0].client_id, 'consumer-1');
    assert.equal(ch.clients[0].state, 3);
    const producer = one.json.producers.find((x: any) => x.pub_counts?.some((pc: any) => pc.topic === topic));
    assert.deepEqual(producer.pub_counts, [{ topic, count: 3 }]);

    const filtered = await call(broker.httpAddress, 'GET', `/stats?format=json&topic=${topic}&channel=idle`);
    assert.deepEqual(
      filtered.json.topics[0].channels.map((x: any) => x.channel_name),
      ['idle'],
    );
    const noClients = await call(broker.httpAddress, 'GET', `/stats?format=json&topic=${topic}&include_clients=false`);
    assert.deepEqual(noClients.json.topics[0].channels.find((x: any) => x.channel_name === 'ch').clients, []);
  });

  test('text format by default', async (t) => {
    const broker = await testBroker(t);
    const topic = uniqueName();
    await call(broker.httpAddress, 'POST', `/pub?topic=${topic}`, 'x');
    const res = await call(broker.httpAddress, 'GET', '/stats');
    assert.equal(res.status, 200);
    assert.match(res.text, /Health: OK/);
    assert.match(res.text, new RegExp(`\\[${topic}\\s*\\] depth: 1`));
  });
});

describe('topic and channel admin', () => {
  test('create, pause, unpause, empty, delete a topic', async (t) => {
    const broker = await testBroker(t);
    const at = broker.httpAddress;
    const topic = uniqueName();
    assert.equal((await call(at, 'POST', `/topic/create?topic=${topic}`)).status, 200);
    assert.ok(broker.engine.getTopic(topic));
    await call(at, 'POST', `/pub?topic=${topic}`, 'x');
    assert.equal((await call(at, 'POST', `/topic/pause?topic=${topic}`)).status, 200);
    assert.equal((await call(at, 'GET', `/stats?format=json&topic=${topic}`)).json.topics[0].paused, true);
    assert.equal((await call(at, 'POST', `/topic/unpause?topic=${topic}`)).status, 200);
    assert.equal((await call(at, 'GET', `/stats?format=json&topic=${topic}`)).json.topics[0].paused, false);
    assert.equal((await call(at, 'POST', `/topic/empty?topic=${topic}`)).status, 200);
    assert.equal((await call(at, 'GET', `/stats?format=json&topic=${topic}`)).json.topics[0].depth, 0);
    assert.equal((await call(at, 'POST', `/topic/delete?topic=${topic}`)).status, 200);
    assert.equal(broker.engine.getTopic(topic), undefined);
  });

  test('topic errors: MISSING_ARG_TOPIC, INVALID_TOPIC (400), TOPIC_NOT_FOUND (404)', async (t) => {
    const broker = await testBroker(t);
    const at = broker.httpAddress;
    for (const op of ['create', 'delete', 'empty', 'pause', 'unpause']) {
      const missing = await call(at, 'POST', `/topic/${op}`);
      assert.deepEqual([missing.status, missing.json], [400, { message: 'MISSING_ARG_TOPIC' }], op);
    }
    assert.deepEqual((await call(at, 'POST', '/topic/create?topic=a%20b')).json, { message: 'INVALID_TOPIC' });
    for (const op of ['delete', 'empty', 'pause', 'unpause']) {
      const res = await call(at, 'POST', `/topic/${op}?topic=${uniqueName()}`);
      assert.deepEqual([res.status, res.json], [404, { message: 'TOPIC_NOT_FOUND' }], op);
    }
  });

  test('create, pause, unpause, empty, delete a channel', async (t) => {
    const broker = await testBroker(t);
    const at = broker.httpAddress;
    const topic = uniqueName();
    await call(at, 'POST', `/topic/create?topic=${topic}`);
    assert.equal((await call(at, 'POST', `/channel/create?topic=${topic}&channel=c1`)).status, 200);
    await call(at, 'POST', `/pub?topic=${topic}`, 'x');
    const stat = async () =>
      (await call(at, 'GET', `/stats?format=json&topic=${topic}&channel=c1`)).json.topics[0].channels[0];
    assert.equal((await stat()).depth, 1);
    assert.equal((await call(at, 'POST', `/channel/pause?topic=${topic}&channel=c1`)).status, 200);
    assert.equal((await stat()).paused, true);
    // A paused channel holds its messages from consumers.
    const c = await client(t, broker);
    await subscribe(c, topic, 'c1', 1);
    assert.equal(await c.quiet(100), true);
    assert.equal((await call(at, 'POST', `/channel/unpause?topic=${topic}&channel=c1`)).status, 200);
    assert.equal((await stat()).paused, false);
    const m = await c.message();
    c.write(cmd(`FIN ${m.id}`));
    c.close();
    await call(at, 'POST', `/pub?topic=${topic}`, 'y');
    assert.equal((await call(at, 'POST', `/channel/empty?topic=${topic}&channel=c1`)).status, 200);
    assert.equal((await stat()).depth, 0);
    assert.equal((await call(at, 'POST', `/channel/delete?topic=${topic}&channel=c1`)).status, 200);
    assert.equal(broker.engine.getTopic(topic)!.getChannel('c1'), undefined);
  });

  test('channel errors: missing/invalid args (400), TOPIC_NOT_FOUND and CHANNEL_NOT_FOUND (404)', async (t) => {
    const broker = await testBroker(t);
    const at = broker.httpAddress;
    const topic = uniqueName();
    await call(at, 'POST', `/topic/create?topic=${topic}`);
    const expect = async (path: string, status: number, message: string) => {
      const res = await call(at, 'POST', path);
      assert.deepEqual([res.status, res.json], [status, { message }], path);
    };
    await expect('/channel/create', 400, 'MISSING_ARG_TOPIC');
    await expect('/channel/create?topic=no%24', 400, 'INVALID_ARG_TOPIC');
    await expect(`/channel/create?topic=${topic}`, 400, 'MISSING_ARG_CHANNEL');
    await expect(`/channel/create?topic=${topic}&channel=no%24`, 400, 'INVALID_ARG_CHANNEL');
    await expect(`/channel/create?topic=${uniqueName()}&channel=c`, 404, 'TOPIC_NOT_FOUND');
    for (const op of ['delete', 'empty', 'pause', 'unpause']) {
      await expect(`/channel/${op}?topic=${topic}&channel=nope`, 404, 'CHANNEL_NOT_FOUND');
    }
  });
});
