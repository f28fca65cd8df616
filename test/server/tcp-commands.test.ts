/**
 * Protocol V2 conformance, command by command: the answers, the E_* codes, and which errors
 * close the connection (fatal in nsqd's protocol_v2.go) and which leave it open.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Engine, MemoryBackend } from '../../src/engine/index.ts';
import { uniqueName } from '../helpers/index.ts';
import { client, identify, publish, sleep, subscribe, testBroker } from './helpers.ts';
import { cmd, mpubBody, type WireClient } from './wire.ts';

async function expectFatal(c: WireClient, code: string): Promise<string> {
  const text = await c.error();
  assert.equal(text.split(' ')[0], code, text);
  assert.equal(await c.waitClosed(), true, `${code} must close the connection`);
  return text;
}

/** A non-fatal error leaves the connection working: a PUB afterwards is still answered. */
async function expectNonFatal(c: WireClient, code: string): Promise<void> {
  const text = await c.error();
  assert.equal(text.split(' ')[0], code, text);
  c.write(cmd(`PUB ${uniqueName('alive')}`, 'x'));
  assert.equal(await c.response(), 'OK');
  assert.equal(c.closed, false);
}

describe('IDENTIFY', () => {
  test('negotiates features with nsqd field names; tls/snappy/deflate asked for are refused', async (t) => {
    const broker = await testBroker(t);
    const c = await client(t, broker);
    const answer = await identify(c, {
      client_id: 'worker-1',
      hostname: 'box.example',
      user_agent: 'wire-test/1',
      heartbeat_interval: 5000,
      msg_timeout: 2000,
      output_buffer_size: 4096,
      output_buffer_timeout: 100,
      sample_rate: 0,
      tls_v1: true,
      snappy: true,
      deflate: true,
      deflate_level: 3,
    });
    assert.equal(answer.max_rdy_count, 2500);
    assert.equal(typeof answer.version, 'string');
    assert.equal(answer.max_msg_timeout, 900000);
    assert.equal(answer.msg_timeout, 2000);
    assert.equal(answer.tls_v1, false);
    assert.equal(answer.snappy, false);
    assert.equal(answer.deflate, false);
    assert.equal(answer.sample_rate, 0);
    assert.equal(answer.auth_required, false);
    assert.equal(answer.output_buffer_size, 4096);
    assert.equal(answer.output_buffer_timeout, 100);
    // The identity shows in /stats once subscribed.
    const topic = uniqueName();
    await subscribe(c, topic, 'ch');
    const stats: any = await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json();
    const seen = stats.topics[0].channels[0].clients[0];
    assert.equal(seen.client_id, 'worker-1');
    assert.equal(seen.hostname, 'box.example');
    assert.equal(seen.user_agent, 'wire-test/1');
    assert.equal(seen.version, 'V2');
    assert.equal(seen.tls, false);
  });

  test('without feature_negotiation the answer is OK; defaults come from the limits', async (t) => {
    const broker = await testBroker(t, { msgTimeoutMs: 30_000 });
    const c = await client(t, broker);
    c.write(cmd('IDENTIFY', JSON.stringify({ client_id: 'plain' })));
    assert.equal(await c.response(), 'OK');
    const d = await client(t, broker);
    assert.equal((await identify(d)).msg_timeout, 30_000);
  });

  for (const [what, fields] of [
    ['heartbeat_interval below 1000', { heartbeat_interval: 999 }],
    ['heartbeat_interval above the max', { heartbeat_interval: 60_001 }],
    ['msg_timeout below 1000', { msg_timeout: 10 }],
    ['msg_timeout above the max', { msg_timeout: 900_001 }],
    ['output_buffer_size below 64', { output_buffer_size: 10 }],
    ['output_buffer_timeout above the max', { output_buffer_timeout: 30_001 }],
    ['sample_rate over 99', { sample_rate: 100 }],
    ['a field of the wrong type', { heartbeat_interval: 'soon' }],
  ] as const) {
    test(`${what} is fatal E_BAD_BODY`, async (t) => {
      const c = await client(t, await testBroker(t));
      c.write(cmd('IDENTIFY', JSON.stringify(fields)));
      await expectFatal(c, 'E_BAD_BODY');
    });
  }

  test('bad JSON, an empty body and a body over max-body-size are fatal E_BAD_BODY', async (t) => {
    const broker = await testBroker(t, { maxBodySize: 2048, maxMsgSize: 1024 });
    const a = await client(t, broker);
    a.write(cmd('IDENTIFY', '{not json'));
    await expectFatal(a, 'E_BAD_BODY');
    const b = await client(t, broker);
    b.write(cmd('IDENTIFY', ''));
    await expectFatal(b, 'E_BAD_BODY');
    const c = await client(t, broker);
    // Only the length is sent: the answer must not wait for 4 KiB that will never come.
    const size = Buffer.alloc(4);
    size.writeInt32BE(4096);
    c.write(Buffer.concat([Buffer.from('IDENTIFY\n'), size]));
    assert.match(await expectFatal(c, 'E_BAD_BODY'), /too big 4096 > 2048/);
  });

  test('heartbeat_interval -1 disables heartbeats, and SUB then is fatal E_INVALID', async (t) => {
    const c = await client(t, await testBroker(t));
    await identify(c, { heartbeat_interval: -1 });
    c.write(cmd(`SUB ${uniqueName()} ch`));
    assert.match(await expectFatal(c, 'E_INVALID'), /heartbeats disabled/);
  });

  test('IDENTIFY after SUB is fatal E_INVALID', async (t) => {
    const c = await client(t, await testBroker(t));
    await subscribe(c, uniqueName(), 'ch');
    c.write(cmd('IDENTIFY', '{}'));
    await expectFatal(c, 'E_INVALID');
  });
});

test('AUTH answers E_AUTH_DISABLED and closes, as nsqd without an auth server', async (t) => {
  const c = await client(t, await testBroker(t));
  c.write(cmd('AUTH', 'secret'));
  await expectFatal(c, 'E_AUTH_DISABLED');
});

describe('SUB', () => {
  test('twice is fatal E_INVALID', async (t) => {
    const c = await client(t, await testBroker(t));
    await subscribe(c, uniqueName(), 'ch');
    c.write(cmd(`SUB ${uniqueName()} ch`));
    await expectFatal(c, 'E_INVALID');
  });
  test('a bad topic name is fatal E_BAD_TOPIC, a bad channel name E_BAD_CHANNEL', async (t) => {
    const broker = await testBroker(t);
    const a = await client(t, broker);
    a.write(cmd('SUB bad/topic ch'));
    await expectFatal(a, 'E_BAD_TOPIC');
    const b = await client(t, broker);
    b.write(cmd(`SUB ${uniqueName()} ${'c'.repeat(65)}`));
    await expectFatal(b, 'E_BAD_CHANNEL');
  });
  test('missing parameters are fatal E_INVALID', async (t) => {
    const c = await client(t, await testBroker(t));
    c.write(cmd('SUB onlytopic'));
    await expectFatal(c, 'E_INVALID');
  });
  test('#ephemeral names are accepted', async (t) => {
    const c = await client(t, await testBroker(t));
    await subscribe(c, `${uniqueName()}#ephemeral`, 'ch#ephemeral');
  });
});

describe('RDY', () => {
  test('before SUB is fatal E_INVALID', async (t) => {
    const c = await client(t, await testBroker(t));
    c.write(cmd('RDY 1'));
    await expectFatal(c, 'E_INVALID');
  });
  test('above max-rdy-count is fatal E_INVALID', async (t) => {
    const c = await client(t, await testBroker(t, { maxRdyCount: 10 }));
    await subscribe(c, uniqueName(), 'ch');
    c.write(cmd('RDY 11'));
    assert.match(await expectFatal(c, 'E_INVALID'), /out of range 0-10/);
  });
  test('a count that is not a number (or negative) is fatal E_INVALID', async (t) => {
    const broker = await testBroker(t);
    for (const bad of ['-1', 'many']) {
      const c = await client(t, broker);
      await subscribe(c, uniqueName(), 'ch');
      c.write(cmd(`RDY ${bad}`));
      await expectFatal(c, 'E_INVALID');
    }
  });
});

describe('FIN, REQ, TOUCH', () => {
  test('FIN of an id not in flight is E_FIN_FAILED and not fatal', async (t) => {
    const c = await client(t, await testBroker(t));
    await subscribe(c, uniqueName(), 'ch', 1);
    c.write(cmd('FIN 0123456789abcdef'));
    await expectNonFatal(c, 'E_FIN_FAILED');
  });
  test('REQ of an id not in flight is E_REQ_FAILED and not fatal', async (t) => {
    const c = await client(t, await testBroker(t));
    await subscribe(c, uniqueName(), 'ch', 1);
    c.write(cmd('REQ 0123456789abcdef 0'));
    await expectNonFatal(c, 'E_REQ_FAILED');
  });
  test('TOUCH of an id not in flight is E_TOUCH_FAILED and not fatal', async (t) => {
    const c = await client(t, await testBroker(t));
    await subscribe(c, uniqueName(), 'ch', 1);
    c.write(cmd('TOUCH 0123456789abcdef'));
    await expectNonFatal(c, 'E_TOUCH_FAILED');
  });
  for (const line of ['FIN short', 'REQ short 0', 'TOUCH short', 'FIN', 'REQ 0123456789abcdef', 'TOUCH']) {
    test(`"${line}" (bad id or missing params) is fatal E_INVALID`, async (t) => {
      const c = await client(t, await testBroker(t));
      await subscribe(c, uniqueName(), 'ch', 1);
      c.write(cmd(line));
      await expectFatal(c, 'E_INVALID');
    });
  }
  for (const line of ['FIN 0123456789abcdef', 'REQ 0123456789abcdef 0', 'TOUCH 0123456789abcdef', 'CLS']) {
    test(`"${line}" before SUB is fatal E_INVALID`, async (t) => {
      const c = await client(t, await testBroker(t));
      c.write(cmd(line));
      await expectFatal(c, 'E_INVALID');
    });
  }
  test('REQ with an unparseable delay is fatal E_INVALID', async (t) => {
    const broker = await testBroker(t);
    const topic = uniqueName();
    const c = await client(t, broker);
    await subscribe(c, topic, 'ch', 1);
    await publish(await client(t, broker), topic, 'm');
    const m = await c.message();
    c.write(cmd(`REQ ${m.id} soon`));
    await expectFatal(c, 'E_INVALID');
  });

  test('FIN finishes, REQ redelivers with attempts + 1, a too-long REQ delay is clamped', async (t) => {
    const broker = await testBroker(t, { maxReqTimeoutMs: 50 });
    const topic = uniqueName();
    const c = await client(t, broker);
    await subscribe(c, topic, 'ch', 1);
    await publish(await client(t, broker), topic, 'one');
    const first = await c.message();
    assert.equal(first.attempts, 1);
    assert.equal(first.body.toString(), 'one');
    // 10 s asked, clamped to the 50 ms max-req-timeout (nsqd ≥ 1.0 clamps instead of failing).
    c.write(cmd(`REQ ${first.id} 10000`));
    const again = await c.message(3000);
    assert.equal(again.id, first.id);
    assert.equal(again.attempts, 2);
    c.write(cmd(`FIN ${again.id}`));
    assert.equal(await c.quiet(100), true);
    c.write(cmd(`FIN ${again.id}`));
    await expectNonFatal(c, 'E_FIN_FAILED');
  });
});

test('CLS answers CLOSE_WAIT, stops deliveries, and FIN still works while closing', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const c = await client(t, broker);
  await subscribe(c, topic, 'ch', 1);
  const p = await client(t, broker);
  await publish(p, topic, 'a');
  await publish(p, topic, 'b');
  const m = await c.message();
  c.write(cmd('CLS'));
  assert.equal(await c.response(), 'CLOSE_WAIT');
  c.write(cmd('RDY 5')); // ignored after CLS, not an error
  c.write(cmd(`FIN ${m.id}`));
  assert.equal(await c.quiet(150), true, 'no message after CLS, no error for RDY or FIN');
});

test('NOP gets no answer; an unknown command is fatal E_INVALID', async (t) => {
  const c = await client(t, await testBroker(t));
  c.write(cmd('NOP'));
  assert.equal(await c.quiet(100), true);
  c.write(cmd('HELLO there'));
  assert.match(await expectFatal(c, 'E_INVALID'), /invalid command HELLO/);
});

describe('PUB, MPUB, DPUB', () => {
  test('PUB and MPUB answer OK and deliver every body unchanged', async (t) => {
    const broker = await testBroker(t);
    const topic = uniqueName();
    const c = await client(t, broker);
    await subscribe(c, topic, 'ch', 10);
    const p = await client(t, broker);
    const binary = Buffer.from([0, 1, 2, 255, 10, 13, 32]);
    p.write(cmd(`PUB ${topic}`, binary));
    assert.equal(await p.response(), 'OK');
    p.write(cmd(`MPUB ${topic}`, mpubBody(['x', 'yy', 'zzz'])));
    assert.equal(await p.response(), 'OK');
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await c.message()).body);
    assert.deepEqual(got[0], binary);
    assert.deepEqual(
      got.slice(1).map((b) => b.toString()),
      ['x', 'yy', 'zzz'],
    );
  });

  test('PUB: bad topic E_BAD_TOPIC, empty body and over max-msg-size E_BAD_MESSAGE, all fatal', async (t) => {
    const broker = await testBroker(t, { maxMsgSize: 100 });
    const a = await client(t, broker);
    a.write(cmd('PUB no*good', 'x'));
    await expectFatal(a, 'E_BAD_TOPIC');
    const b = await client(t, broker);
    b.write(cmd(`PUB ${uniqueName()}`, ''));
    await expectFatal(b, 'E_BAD_MESSAGE');
    const c = await client(t, broker);
    const size = Buffer.alloc(4);
    size.writeInt32BE(101);
    c.write(Buffer.concat([Buffer.from(`PUB ${uniqueName()}\n`), size])); // the body never follows
    assert.match(await expectFatal(c, 'E_BAD_MESSAGE'), /too big 101 > 100/);
    const d = await client(t, broker);
    d.write(cmd('PUB'));
    await expectFatal(d, 'E_INVALID');
  });

  test('MPUB: body over max-body-size and count 0 are E_BAD_BODY; a bad message size E_BAD_MESSAGE', async (t) => {
    const broker = await testBroker(t, { maxMsgSize: 100, maxBodySize: 1000 });
    const topic = uniqueName();
    const a = await client(t, broker);
    const size = Buffer.alloc(4);
    size.writeInt32BE(1001);
    a.write(Buffer.concat([Buffer.from(`MPUB ${topic}\n`), size]));
    await expectFatal(a, 'E_BAD_BODY');
    const b = await client(t, broker);
    b.write(cmd(`MPUB ${topic}`, Buffer.alloc(4)));
    await expectFatal(b, 'E_BAD_BODY');
    const c = await client(t, broker);
    c.write(cmd(`MPUB ${topic}`, mpubBody(['ok', 'x'.repeat(101)])));
    assert.match(await expectFatal(c, 'E_BAD_MESSAGE'), /too big 101 > 100/);
    const d = await client(t, broker);
    const lying = mpubBody(['abc']);
    lying.writeInt32BE(50, 4); // the one message claims 50 bytes, 3 are there
    d.write(cmd(`MPUB ${topic}`, lying));
    await expectFatal(d, 'E_BAD_MESSAGE');
    const e = await client(t, broker);
    const zero = mpubBody(['abc']);
    zero.writeInt32BE(0, 4);
    e.write(cmd(`MPUB ${topic}`, zero.subarray(0, 8)));
    await expectFatal(e, 'E_BAD_MESSAGE');
    // Nothing of the refused batches was published.
    const stats: any = await (await fetch(`http://${broker.httpAddress}/stats?format=json&topic=${topic}`)).json();
    assert.equal(stats.topics[0]?.message_count ?? 0, 0);
  });

  test('DPUB delivers after the delay; a delay over max-req-timeout or not a number is fatal E_INVALID', async (t) => {
    const broker = await testBroker(t, { maxReqTimeoutMs: 60_000 });
    const topic = uniqueName();
    const c = await client(t, broker);
    await subscribe(c, topic, 'ch', 5);
    const p = await client(t, broker);
    const sent = Date.now();
    p.write(cmd(`DPUB ${topic} 300`, 'later'));
    assert.equal(await p.response(), 'OK');
    const m = await c.message(3000);
    assert.equal(m.body.toString(), 'later');
    assert.ok(Date.now() - sent >= 280, `delivered after ${Date.now() - sent} ms`);
    const q = await client(t, broker);
    q.write(cmd(`DPUB ${topic} 60001`, 'x'));
    assert.match(await expectFatal(q, 'E_INVALID'), /out of range/);
    const r = await client(t, broker);
    r.write(cmd(`DPUB ${topic} -5`, 'x'));
    await expectFatal(r, 'E_INVALID');
    const s = await client(t, broker);
    s.write(cmd(`DPUB ${topic}`, 'x'));
    await expectFatal(s, 'E_INVALID');
  });

  test('PUB works in any state, including while subscribed', async (t) => {
    const broker = await testBroker(t);
    const topic = uniqueName();
    const c = await client(t, broker);
    await subscribe(c, topic, 'ch', 1);
    c.write(cmd(`PUB ${topic}`, 'self'));
    const frames = [await c.next(), await c.next()];
    assert.deepEqual(frames.map((f) => f.type).sort(), [0, 2]);
  });
});

test('a fatal error stops processing: commands already sent after it are not run', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const c = await client(t, broker);
  c.write(Buffer.concat([cmd('BOGUS'), cmd(`PUB ${topic}`, 'after')]));
  await expectFatal(c, 'E_INVALID');
  await sleep(50);
  assert.equal(broker.engine.getTopic(topic), undefined);
});

test('publishing into a closed engine is fatal E_PUB_FAILED / E_MPUB_FAILED / E_DPUB_FAILED', async (t) => {
  const engine = new Engine();
  t.after(() => engine.close());
  const broker = await testBroker(t, { engine });
  const clients = [await client(t, broker), await client(t, broker), await client(t, broker)];
  await engine.close();
  clients[0]!.write(cmd(`PUB ${uniqueName()}`, 'x'));
  assert.match(await expectFatal(clients[0]!, 'E_PUB_FAILED'), /closed/);
  clients[1]!.write(cmd(`MPUB ${uniqueName()}`, mpubBody(['x'])));
  await expectFatal(clients[1]!, 'E_MPUB_FAILED');
  clients[2]!.write(cmd(`DPUB ${uniqueName()} 10`, 'x'));
  await expectFatal(clients[2]!, 'E_DPUB_FAILED');
});

test('OK waits for the engine to make the publish durable; later answers stay in order behind it', async (t) => {
  // A backend whose sync (the fsync of a durable disk queue) takes 200 ms.
  class SlowSync extends MemoryBackend {
    override sync(): Promise<void> {
      return new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  const engine = new Engine({ backend: () => new SlowSync() });
  t.after(() => engine.close());
  const broker = await testBroker(t, { engine });
  const c = await client(t, broker);
  const start = Date.now();
  // PUB, then a command that fails at once: its error must not overtake the PUB's OK.
  c.write(Buffer.concat([cmd(`PUB ${uniqueName()}`, 'durable'), cmd('RDY 1')]));
  assert.equal(await c.response(), 'OK');
  assert.ok(Date.now() - start >= 190, `OK after ${Date.now() - start} ms, before the sync finished`);
  await expectFatal(c, 'E_INVALID');
});
