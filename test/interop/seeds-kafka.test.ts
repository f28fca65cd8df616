/**
 * The seed's Kafka snippets (test/interop/seeds/kafka_*.py: kafka-python, topic `datascience`) run
 * as written with Debian's python3-kafka against the Kafka peer of the run (librdkafka's mock
 * cluster, or KAFKA_URL), both ways, and kcat (-P / -C) the same way. Substituted per run: the
 * topic, the bootstrap address and, for the consumer, the group and start (`group_id=...,
 * auto_offset_reset="earliest"`); `from kafka3 import` resolves to Debian's `kafka` through a
 * one-line alias module (seeds/shim/kafka3.py). kafka-python 2.0.2 against librdkafka 2.0.2's mock
 * needed no api_version pin: it probes the brokers and settles on (2, 3, 0).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, type TestContext, test } from 'node:test';
import { z } from 'zod';
import { codecs } from '../../src/core/codecs/index.ts';
import { bytesMessage, defineMessage } from '../../src/core/schema.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { app } from '../../src/runtime/app.ts';
import { parseKafkaOptions } from '../../src/transports/kafka/options.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { KCAT, kafkaSkipReason, kafkaUrl, withOptions } from '../helpers/kafka-mock.ts';
import { requirePython } from './python.ts';
import { runSeed, text } from './seeds.ts';

const COUNT = 500;
const SKIP = kafkaSkipReason();
const SHIM = fileURLToPath(new URL('./seeds/shim', import.meta.url));
const PYTHON = '/usr/bin/python3';

/** Debian's python3-kafka, installed the first time when we may (root), like python.ts does for the others. */
function requireKafkaPython(t: TestContext): boolean {
  if (!requirePython(t)) return false;
  const importable = () => {
    try {
      execFileSync(PYTHON, ['-c', 'import kafka'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (importable()) return true;
  if (process.getuid?.() === 0) execFileSync('apt-get', ['install', '-y', '-q', 'python3-kafka'], { stdio: 'ignore', timeout: 300_000 });
  if (importable()) return true;
  if ((process.env.CONVEYOR_SKIP_SERVICES ?? '').split(',').includes('python') && process.env.CI !== 'true') {
    t.skip(`${PYTHON} cannot import kafka (apt-get install python3-kafka), and CONVEYOR_SKIP_SERVICES names python`);
    return false;
  }
  throw new Error(`${PYTHON} cannot import kafka: apt-get install python3-kafka`);
}

/** The cluster's URL and its bootstrap brokers as `host:port,...` (what kafka-python and kcat take). */
async function cluster(): Promise<{ url: string; bootstrap: string }> {
  const url = await kafkaUrl();
  return { url: withOptions(url, 'sessionTimeoutMs=3000&heartbeatIntervalMs=500&commitIntervalMs=100'), bootstrap: parseKafkaOptions(parseTransportUrl(url)).brokers.join(',') };
}

const Line = defineMessage({ name: 'line', codec: 'application/json', schema: z.object({ n: z.number().int(), text: z.string() }) });
const Reading = defineMessage({ name: 'reading', schema: z.object({ n: z.number().int(), text: z.string(), at: z.date(), raw: z.instanceof(Uint8Array) }) });
const reading = (n: number) => ({ n, text: text(n), at: new Date(1_700_000_000_000 + n * 1000), raw: new Uint8Array([n & 255, 0, 255]) });

/** A process run to its end, its stdout collected as bytes. */
function runToEnd(command: string, args: string[], input?: string): Promise<{ code: number | null; out: Buffer; err: string }> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  child.stdin.end(input ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out: Buffer.concat(out), err })));
}

describe('seeds: Kafka (kafka-python, topic datascience)', { skip: SKIP ?? false }, () => {
  test(`kafka-python's producer.py as written → a typed Conveyor consumer: ${COUNT}/${COUNT}, a garbage line dead-lettered`, async (t) => {
    if (!requireKafkaPython(t)) return;
    const { url, bootstrap } = await cluster();
    const topic = uniqueName('datascience');
    const producer = runSeed(
      t,
      'kafka_producer.py',
      [
        ['"localhost:9092"', JSON.stringify(bootstrap)],
        ['"datascience"', JSON.stringify(topic)],
      ],
      '',
      { PYTHONPATH: SHIM },
    );
    // Subscribed before the first line is typed: a new channel starts at the topic's end.
    const a = app({ url });
    t.after(() => a.close());
    const dead: string[] = [];
    a.on('dead', (e) => dead.push(`${(e.error as { code?: string }).code}: ${e.error.message}`));
    const got = new Map<number, string>();
    await a.consume({ ...Line, topic }, { channel: 'seeds', maxInFlight: 100 }, (line) => {
      got.set(line.n, line.text);
    });
    // The user types JSON; the snippet sends its UTF-8 bytes, no key, no headers. One line is not JSON.
    for (let n = 0; n < COUNT; n++) {
      producer.child.stdin!.write(`${JSON.stringify({ n, text: text(n) })}\n`);
      if (n === 250) producer.child.stdin!.write('not json at all\n');
    }
    await waitFor(() => got.size >= COUNT && dead.length >= 1, `${COUNT} records and one dead letter`, 30_000, 20).catch((e: Error) => {
      throw new Error(`${e.message}: got ${got.size} records, ${dead.length} dead letters`);
    });
    // Input ends only now, as when a person stops typing: the snippet never flushes, and
    // kafka-python's atexit close(timeout=0) drops whatever send() still held (measured: ending
    // input right after 500 lines left 0 to 246 of them in the topic).
    producer.child.stdin!.end();
    const { stderr } = await producer.exit;
    assert.match(stderr, /EOFError/);
    assert.doesNotMatch(stderr, /KafkaError|KafkaTimeoutError/);
    assert.deepEqual(
      [...got].sort((x, y) => x[0] - y[0]),
      Array.from({ length: COUNT }, (_, n) => [n, text(n)]),
    );
    assert.equal(dead.length, 1);
    assert.match(dead[0]!, /^ERR_DECODE/);
  });

  test(`a Conveyor producer (envelope=false) → kafka-python's consumer.py as written (group_id, earliest): ${COUNT}/${COUNT}`, async (t) => {
    if (!requireKafkaPython(t)) return;
    const { url, bootstrap } = await cluster();
    const topic = uniqueName('datascience');
    const a = app({ url: withOptions(url, 'envelope=false') });
    t.after(() => a.close());
    const Mail = bytesMessage('mail', { topic });
    await a.publishMany(
      Mail,
      Array.from({ length: COUNT }, (_, n) => new TextEncoder().encode(text(n))),
    );
    const consumer = runSeed(
      t,
      'kafka_consumer.py',
      [['KafkaConsumer("datascience")', `KafkaConsumer(${JSON.stringify(topic)}, bootstrap_servers=${JSON.stringify(bootstrap)}, group_id="seeds", auto_offset_reset="earliest")`]],
      '',
      { PYTHONPATH: SHIM },
    );
    await waitFor(() => consumer.lines.length >= COUNT || consumer.child.exitCode !== null, `${COUNT} lines from consumer.py`, 30_000, 20);
    assert.equal(consumer.child.exitCode, null, 'consumer.py is still running');
    // Records spread over partitions: order holds within one, not across them.
    assert.deepEqual([...consumer.lines].sort(), Array.from({ length: COUNT }, (_, n) => `Got message: ${text(n)}`).sort());
  });

  test(`a Conveyor producer (CBOR, headers) → KafkaConsumer(topic, group_id=..., auto_offset_reset="earliest") + cbor2: ${COUNT}/${COUNT}`, async (t) => {
    if (!requireKafkaPython(t)) return;
    const { url, bootstrap } = await cluster();
    const topic = uniqueName('datascience');
    const a = app({ url });
    t.after(() => a.close());
    await a.publishMany(
      { ...Reading, topic },
      Array.from({ length: COUNT }, (_, n) => reading(n)),
    );
    const script = `
import json, sys, cbor2
from kafka import KafkaConsumer
consumer = KafkaConsumer(sys.argv[1], bootstrap_servers=sys.argv[2], group_id="seeds", auto_offset_reset="earliest")
seen = 0
for record in consumer:
    value = cbor2.loads(record.value)
    value["at"] = value["at"].timestamp()
    value["raw"] = list(value["raw"])
    headers = {k: v.decode("utf-8") for k, v in record.headers}
    print(json.dumps({"value": value, "key": record.key, "headers": headers}), flush=True)
    seen += 1
    if seen == int(sys.argv[3]):
        break
consumer.close()
`;
    const child = spawn(PYTHON, ['-c', script, topic, bootstrap, String(COUNT)], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0, err);
    const records = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(records.length, COUNT);
    const byN = new Map(records.map((r) => [r.value.n as number, r]));
    for (let n = 0; n < COUNT; n++) {
      const r = byN.get(n);
      assert.ok(r, `record ${n}`);
      const want = reading(n);
      assert.deepEqual(r.value, { n, text: want.text, at: want.at.getTime() / 1000, raw: [...want.raw] });
      assert.equal(r.key, null, 'Conveyor sets no record key');
      assert.equal(r.headers['content-type'], 'application/cbor');
      assert.equal(r.headers['conveyor-type'], 'reading');
      assert.equal(r.headers['conveyor-version'], '1');
      assert.match(r.headers['conveyor-id'], /^[0-9a-f]{16}$/);
    }
  });

  test(`kcat -P → a Conveyor consumer: ${COUNT}/${COUNT}; Conveyor → kcat -C: ${COUNT}/${COUNT}, the CBOR bytes exactly`, async (t) => {
    const { url, bootstrap } = await cluster();
    const inTopic = uniqueName('kcat_in');
    const outTopic = uniqueName('kcat_out');
    const a = app({ url });
    t.after(() => a.close());
    const got: string[] = [];
    // Subscribed first: a new channel starts at the topic's end (the default, start=latest).
    await a.consume(bytesMessage('line', { topic: inTopic }), { channel: 'kcat', maxInFlight: 100 }, (body) => {
      got.push(Buffer.from(body).toString('utf8'));
    });
    const lines = Array.from({ length: COUNT }, (_, n) => text(n));
    const produced = await runToEnd(KCAT, ['-P', '-b', bootstrap, '-t', inTopic], `${lines.join('\n')}\n`);
    assert.equal(produced.code, 0, produced.err);
    await waitFor(() => got.length >= COUNT, `${COUNT} records from kcat -P`, 30_000, 20);
    assert.deepEqual([...got].sort(), [...lines].sort());

    const values = Array.from({ length: COUNT }, (_, n) => reading(n));
    await a.publishMany({ ...Reading, topic: outTopic }, values);
    // %R: the value's length as 4 bytes big-endian, then the value, then the headers as CSV.
    const read = await runToEnd(KCAT, ['-C', '-b', bootstrap, '-t', outTopic, '-o', 'beginning', '-c', String(COUNT), '-e', '-q', '-f', '%R%s%h\n']);
    assert.equal(read.code, 0, read.err);
    const bodies: Buffer[] = [];
    for (let at = 0; at < read.out.length; ) {
      const size = read.out.readInt32BE(at);
      bodies.push(read.out.subarray(at + 4, at + 4 + size));
      const eol = read.out.indexOf(0x0a, at + 4 + size);
      const headers = read.out.subarray(at + 4 + size, eol).toString('utf8');
      assert.match(headers, /content-type=application\/cbor/);
      assert.match(headers, /conveyor-type=reading/);
      at = eol + 1;
    }
    assert.equal(bodies.length, COUNT);
    const want = new Set(values.map((v) => Buffer.from(codecs.cbor.encode(v)).toString('hex')));
    assert.deepEqual(new Set(bodies.map((b) => b.toString('hex'))), want);
  });
});
