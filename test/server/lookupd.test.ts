/**
 * Registration with nsqlookupd (nsqd `lookup.go`): against a protocol peer in this file that
 * records what the broker says, always; and against the real nsqlookupd (and nsqadmin, and an
 * nsqjs Reader that knows only lookupd) when NSQLOOKUPD_BIN / NSQADMIN_BIN name binaries built
 * from nsq's source.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
// @ts-expect-error nsqjs ships no types
import nsq from 'nsqjs';
import { run as brokerCommand } from '../../src/cli/commands/broker.ts';
import { spawnChild } from '../helpers/child.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { testBroker } from './helpers.ts';

/** A minimal nsqlookupd: answers as lookupd does and keeps every command line (and IDENTIFY body). */
class FakeLookupd {
  readonly lines: string[] = [];
  identify: Record<string, unknown> | undefined;
  sockets = new Set<Socket>();
  server: Server;
  address = '';

  constructor() {
    this.server = createServer((socket) => this.#serve(socket));
  }

  async listen(port = 0): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    const a = this.server.address() as { port: number };
    this.address = `127.0.0.1:${a.port}`;
    return this.address;
  }

  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let magic = false;
    const reply = (text: string) => {
      const size = Buffer.alloc(4);
      size.writeUInt32BE(Buffer.byteLength(text), 0);
      socket.write(Buffer.concat([size, Buffer.from(text)]));
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (!magic) {
          if (buffered.length < 4) return;
          assert.equal(buffered.subarray(0, 4).toString(), '  V1');
          buffered = buffered.subarray(4);
          magic = true;
        }
        const nl = buffered.indexOf(0x0a);
        if (nl < 0) return;
        const line = buffered.subarray(0, nl).toString();
        if (line === 'IDENTIFY') {
          if (buffered.length < nl + 5) return;
          const size = buffered.readUInt32BE(nl + 1);
          if (buffered.length < nl + 5 + size) return;
          this.identify = JSON.parse(buffered.subarray(nl + 5, nl + 5 + size).toString());
          buffered = buffered.subarray(nl + 5 + size);
          this.lines.push(line);
          reply(JSON.stringify({ tcp_port: 4160, http_port: 4161, version: '1.3.0', broadcast_address: 'x', hostname: 'x' }));
          continue;
        }
        buffered = buffered.subarray(nl + 1);
        this.lines.push(line);
        reply('OK');
      }
    });
  }
}

async function fakeLookupd(t: import('node:test').TestContext): Promise<FakeLookupd> {
  const fake = new FakeLookupd();
  await fake.listen();
  t.after(() => fake.close());
  return fake;
}

test('identifies with its real ports and registers what exists, then each change, as nsqd does', async (t) => {
  const lookupd = await fakeLookupd(t);
  const engineTopic = uniqueName('lk');
  const broker = await testBroker(t, { lookupdTcpAddresses: [lookupd.address], broadcastAddress: '127.0.0.1' });
  await waitFor(() => lookupd.identify !== undefined, 'IDENTIFY');
  const tcpPort = Number(broker.tcpAddress.split(':').pop());
  const httpPort = Number(broker.httpAddress.split(':').pop());
  assert.deepEqual(
    { ...lookupd.identify, hostname: undefined },
    { version: '1.3.0-conveyor', tcp_port: tcpPort, http_port: httpPort, broadcast_address: '127.0.0.1', hostname: undefined },
  );

  broker.engine.topic(engineTopic).channel('a');
  broker.engine.topic(engineTopic).channel('b');
  await waitFor(() => lookupd.lines.includes(`REGISTER ${engineTopic} b`), 'the REGISTERs');
  await broker.engine.getTopic(engineTopic)!.deleteChannel('a');
  await broker.engine.deleteTopic(engineTopic);
  await waitFor(() => lookupd.lines.includes(`UNREGISTER ${engineTopic}`), 'the UNREGISTERs');
  // The connection may come up before or after the topic exists; either way what it sends after
  // IDENTIFY is registrations of what exists (repeats are harmless to lookupd), then the removals
  // in nsqd's order: channels first, then the topic.
  assert.equal(lookupd.lines[0], 'IDENTIFY');
  const registers = lookupd.lines.slice(1, -3);
  assert.ok(registers.includes(`REGISTER ${engineTopic} a`) && registers.includes(`REGISTER ${engineTopic} b`), registers.join('\n'));
  for (const line of registers) assert.ok([`REGISTER ${engineTopic}`, `REGISTER ${engineTopic} a`, `REGISTER ${engineTopic} b`].includes(line), line);
  assert.deepEqual(lookupd.lines.slice(-3), [`UNREGISTER ${engineTopic} a`, `UNREGISTER ${engineTopic} b`, `UNREGISTER ${engineTopic}`]);
});

test('a lookupd that comes back later gets IDENTIFY and every registration again at the next PING', async (t) => {
  const topic = uniqueName('lk');
  const first = await fakeLookupd(t);
  const logs: string[] = [];
  const broker = await testBroker(t, {
    lookupdTcpAddresses: [first.address],
    broadcastAddress: '127.0.0.1',
    lookupdPingIntervalMs: 50,
    log: (line) => logs.push(line),
  });
  broker.engine.topic(topic).channel('c');
  broker.engine.topic(`${topic}-bare`);
  await waitFor(() => first.lines.includes(`REGISTER ${topic} c`) && first.lines.includes(`REGISTER ${topic}-bare`), 'the first registrations');
  const port = Number(first.address.split(':')[1]);
  await first.close();
  await waitFor(() => logs.some((l) => /retried at the next change or PING/.test(l)), 'the lost lookupd to be logged');

  const second = new FakeLookupd();
  await second.listen(port);
  t.after(() => second.close());
  await waitFor(() => second.lines.includes('PING'), 'a PING to the new lookupd');
  assert.deepEqual(second.lines.slice(0, 3), ['IDENTIFY', `REGISTER ${topic} c`, `REGISTER ${topic}-bare`]);
  assert.ok(logs.some((l) => l.endsWith(': registered')), logs.join('\n'));
});

test('conveyor broker --lookupd-tcp-address (repeatable) registers with each and --broadcast-address is what they hand out', async (t) => {
  const one = await fakeLookupd(t);
  const two = await fakeLookupd(t);
  const lines: string[] = [];
  const stop = new AbortController();
  const exit = brokerCommand(
    ['--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--memory', '--lookupd-tcp-address', one.address, '--lookupd-tcp-address', two.address, '--broadcast-address', 'broker.example'],
    { out: (l) => lines.push(l), err: (l) => lines.push(l), stop: stop.signal },
  );
  t.after(() => stop.abort());
  await waitFor(() => one.identify !== undefined && two.identify !== undefined, 'IDENTIFY to both');
  assert.equal(one.identify!.broadcast_address, 'broker.example');
  assert.equal(two.identify!.broadcast_address, 'broker.example');
  assert.ok(lines.includes(`lookupd ${one.address}`) && lines.includes(`lookupd ${two.address}`), lines.join('\n'));
  stop.abort();
  assert.equal(await exit, 0);
  await waitFor(() => one.sockets.size === 0 && two.sockets.size === 0, 'the connections closed with the broker');
});

test('a bad lookupd address is refused when the broker starts', async (t) => {
  await assert.rejects(testBroker(t, { lookupdTcpAddresses: ['no-port'] }), { code: 'ERR_BAD_OPTIONS' });
});

// ---- the real nsqlookupd, nsqadmin and an nsqjs Reader that knows only lookupd ----

const LOOKUPD = process.env.NSQLOOKUPD_BIN;
const ADMIN = process.env.NSQADMIN_BIN;

async function startNsqBinary(t: import('node:test').TestContext, bin: string, args: string[], kinds: string[]) {
  const run = spawnChild(bin, args);
  t.after(() => {
    run.child.kill('SIGKILL');
  });
  const found: Record<string, string> = {};
  await waitFor(() => {
    for (const kind of kinds) {
      const m = new RegExp(`${kind}: listening on (\\S+)`).exec(run.err());
      if (m) found[kind] = m[1]!;
    }
    return kinds.every((k) => found[k] !== undefined);
  }, `${bin} to listen`, 10_000);
  return found;
}

async function getJson(url: string): Promise<any> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

test('the real nsqlookupd lists the broker, and an nsqjs Reader that knows only lookupd consumes from it', {
  skip: LOOKUPD ? false : 'no nsqlookupd: set NSQLOOKUPD_BIN (built from nsq source)',
}, async (t) => {
  const lk = await startNsqBinary(t, LOOKUPD!, ['-tcp-address=127.0.0.1:0', '-http-address=127.0.0.1:0'], ['TCP', 'HTTP']);
  const broker = await testBroker(t, { lookupdTcpAddresses: [lk.TCP!] });
  const topic = uniqueName('lk');
  broker.engine.topic(topic).channel('archive');
  await waitFor(async () => (await getJson(`http://${lk.HTTP}/lookup?topic=${topic}`)).status === 200, 'lookupd to know the topic');
  const lookup = (await getJson(`http://${lk.HTTP}/lookup?topic=${topic}`)).body;
  const producer = lookup.producers[0];
  assert.equal(producer.broadcast_address, '127.0.0.1');
  assert.equal(`127.0.0.1:${producer.tcp_port}`, broker.tcpAddress);
  assert.equal(`127.0.0.1:${producer.http_port}`, broker.httpAddress);
  assert.deepEqual(lookup.channels, ['archive']);

  const received: string[] = [];
  const reader = new nsq.Reader(topic, 'archive', { lookupdHTTPAddresses: [lk.HTTP], lookupdPollInterval: 1 });
  reader.on('message', (m: any) => {
    received.push(m.body.toString());
    m.finish();
  });
  reader.connect();
  t.after(() => reader.close());
  const bodies = Array.from({ length: 50 }, (_, i) => `m${i}`);
  broker.engine.topic(topic).publish(bodies.map((b) => ({ body: Buffer.from(b) })));
  await waitFor(() => received.length >= 50, 'the reader to get 50', 15_000);
  assert.deepEqual(received.sort(), bodies.sort());

  await broker.engine.deleteTopic(topic);
  await waitFor(async () => (await getJson(`http://${lk.HTTP}/lookup?topic=${topic}`)).body.producers?.length === 0, 'lookupd to forget the topic');
});

test('nsqadmin, pointed at lookupd, shows the broker\'s topics, channels and depth', {
  skip: LOOKUPD && ADMIN ? false : 'no nsqlookupd/nsqadmin: set NSQLOOKUPD_BIN and NSQADMIN_BIN (built from nsq source)',
}, async (t) => {
  const lk = await startNsqBinary(t, LOOKUPD!, ['-tcp-address=127.0.0.1:0', '-http-address=127.0.0.1:0'], ['TCP', 'HTTP']);
  const admin = await startNsqBinary(t, ADMIN!, ['-http-address=127.0.0.1:0', `-lookupd-http-address=${lk.HTTP}`], ['HTTP']);
  const broker = await testBroker(t, { lookupdTcpAddresses: [lk.TCP!] });
  const topic = uniqueName('lk');
  broker.engine.topic(topic).channel('archive');
  broker.engine.topic(topic).publish(Array.from({ length: 7 }, () => ({ body: Buffer.from('x') })));
  await waitFor(async () => (await getJson(`http://${admin.HTTP}/api/topics`)).body.topics?.includes(topic), 'nsqadmin to list the topic');
  const nodes = (await getJson(`http://${admin.HTTP}/api/nodes`)).body;
  assert.ok(
    nodes.nodes.some((n: any) => `${n.broadcast_address}:${n.tcp_port}` === broker.tcpAddress),
    JSON.stringify(nodes),
  );
  const detail = (await getJson(`http://${admin.HTTP}/api/topics/${topic}`)).body;
  assert.equal(detail.message_count, 7, JSON.stringify(detail));
  const channel = (await getJson(`http://${admin.HTTP}/api/topics/${topic}/archive`)).body;
  assert.equal(channel.depth, 7, JSON.stringify(channel));

  // nsqadmin's actions go to the broker's HTTP API as they would go to nsqd's.
  const post = (path: string, action: string) =>
    fetch(`http://${admin.HTTP}${path}`, { method: 'POST', body: JSON.stringify({ action }), headers: { 'content-type': 'application/json' } });
  assert.equal((await post(`/api/topics/${topic}`, 'pause')).status, 200);
  await waitFor(() => (broker.engine.stats() as any[]).some((s: any) => s.topic_name === topic && s.paused), 'the topic paused');
  assert.equal((await post(`/api/topics/${topic}/archive`, 'empty')).status, 200);
  await waitFor(() => (broker.engine.stats() as any[]).some((s: any) => s.topic_name === topic && s.channels[0].depth === 0), 'the channel emptied');
  assert.equal((await fetch(`http://${admin.HTTP}/api/topics/${topic}`, { method: 'DELETE' })).status, 200);
  await waitFor(() => broker.engine.getTopic(topic) === undefined, 'the topic deleted');
});
