/**
 * The read loop against hostile and awkward input: commands split at every byte boundary,
 * garbage, lying lengths, overlong lines and a wrong protocol magic. The server must answer
 * with an error frame or close, never crash, never wait for (or allocate) a body over the limit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { uniqueName } from '../helpers/index.ts';
import { client, publish, sleep, testBroker } from './helpers.ts';
import { cmd, mpubBody, WireClient } from './wire.ts';

function script(topic: string): Buffer {
  return Buffer.concat([
    Buffer.from('  V2'),
    cmd('IDENTIFY', JSON.stringify({ feature_negotiation: true, client_id: 'split' })),
    cmd(`PUB ${topic}`, 'one'),
    cmd(`MPUB ${topic}`, mpubBody(['two', 'three'])),
    cmd(`DPUB ${topic} 0`, 'four'),
    Buffer.from(`SUB ${topic} ch\r\n`), // \r\n is accepted as nsqd does
    cmd('RDY 10'),
    cmd('NOP'),
  ]);
}

async function checkScript(c: WireClient): Promise<void> {
  const identify = JSON.parse(await c.response());
  assert.equal(identify.max_rdy_count, 2500);
  for (let i = 0; i < 4; i++) assert.equal(await c.response(), 'OK');
  const bodies = [];
  for (let i = 0; i < 4; i++) bodies.push((await c.message()).body.toString());
  assert.deepEqual(bodies.sort(), ['four', 'one', 'three', 'two']);
}

test('a command sequence split at every byte boundary gives the same answers', async (t) => {
  const broker = await testBroker(t);
  const length = script('split_topic_000').length;
  for (let cut = 1; cut < length; cut++) {
    const topic = `split_topic_${String(cut).padStart(3, '0')}`;
    const bytes = script(topic);
    const c = await WireClient.open(broker.tcpAddress, false);
    c.socket.setNoDelay(true);
    c.write(bytes.subarray(0, cut));
    await sleep(2); // let the server read the first part on its own
    c.write(bytes.subarray(cut));
    await checkScript(c);
    c.close();
  }
});

test('the same sequence fed one byte at a time', async (t) => {
  const broker = await testBroker(t);
  const bytes = script(uniqueName());
  const c = await client(t, broker, false);
  c.socket.setNoDelay(true);
  for (let i = 0; i < bytes.length; i++) {
    c.write(bytes.subarray(i, i + 1));
    if (i % 8 === 0) await sleep(1);
  }
  await checkScript(c);
});

test('many commands in one write are all answered, in order', async (t) => {
  const broker = await testBroker(t);
  const topic = uniqueName();
  const c = await client(t, broker);
  const parts = [];
  for (let i = 0; i < 500; i++) parts.push(cmd(`PUB ${topic}`, `m${i}`));
  c.write(Buffer.concat(parts));
  for (let i = 0; i < 500; i++) assert.equal(await c.response(), 'OK');
});

test('a wrong protocol magic gets E_BAD_PROTOCOL and a close', async (t) => {
  const c = await client(t, await testBroker(t), false);
  c.write('  V1');
  assert.equal(await c.error(), 'E_BAD_PROTOCOL');
  assert.equal(await c.waitClosed(), true);
});

test('a line longer than 4 KiB without a newline is refused without waiting for more', async (t) => {
  const c = await client(t, await testBroker(t));
  c.write('PUB '.padEnd(5000, 'x'));
  assert.match(await c.error(), /^E_INVALID/);
  assert.equal(await c.waitClosed(), true);
});

test('lying lengths are refused as soon as the length arrives, whatever their size', async (t) => {
  const broker = await testBroker(t);
  const cases: [string, number, string][] = [
    [`PUB ${uniqueName()}`, 0x7fffffff, 'E_BAD_MESSAGE'],
    [`PUB ${uniqueName()}`, -1, 'E_BAD_MESSAGE'],
    [`DPUB ${uniqueName()} 10`, 0x40000000, 'E_BAD_MESSAGE'],
    [`MPUB ${uniqueName()}`, 0x7fffffff, 'E_BAD_BODY'],
    [`MPUB ${uniqueName()}`, -2147483648, 'E_BAD_BODY'],
    ['IDENTIFY', 0x7fffffff, 'E_BAD_BODY'],
    ['AUTH', 0x7fffffff, 'E_BAD_BODY'],
  ];
  for (const [line, length, code] of cases) {
    const c = await client(t, broker);
    const size = Buffer.alloc(4);
    size.writeInt32BE(length);
    c.write(Buffer.concat([Buffer.from(`${line}\n`), size]));
    assert.equal((await c.error()).split(' ')[0], code, line);
    assert.equal(await c.waitClosed(), true);
  }
  // An MPUB whose count promises more messages than its body can hold.
  const c = await client(t, broker);
  const body = mpubBody(['a']);
  body.writeInt32BE(0x7fffffff, 0);
  c.write(cmd(`MPUB ${uniqueName()}`, body));
  assert.match(await c.error(), /^E_BAD_BODY/);
  assert.equal(await c.waitClosed(), true);
});

/** xorshift32: deterministic garbage, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

test('garbage gets an error frame or a close, and the broker keeps serving', async (t) => {
  const broker = await testBroker(t);
  const next = random(0x5eed);
  const words = ['PUB', 'MPUB', 'DPUB', 'SUB', 'RDY', 'FIN', 'REQ', 'TOUCH', 'IDENTIFY', 'NOP', 'CLS', 'AUTH', ''];
  for (let round = 0; round < 60; round++) {
    const c = await WireClient.open(broker.tcpAddress);
    const parts: Buffer[] = [];
    for (let i = 0; i < 4; i++) {
      const junk = Buffer.alloc(Math.floor(next() * 64));
      for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(next() * 256);
      const word = words[Math.floor(next() * words.length)]!;
      parts.push(Buffer.from(next() < 0.5 ? `${word} ` : word), junk, Buffer.from(next() < 0.7 ? '\n' : ''));
    }
    c.write(Buffer.concat(parts));
    // Either an error arrives and the connection closes, or the server is still waiting for a
    // (bounded) body: both are fine. What must not happen is a crash.
    await Promise.race([c.waitClosed(300), sleep(300)]);
    c.close();
  }
  const p = await client(t, broker);
  await publish(p, uniqueName(), 'still alive');
});
