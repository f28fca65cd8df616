import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { startBroker } from '../../src/server/index.ts';
import { buildDist, exitOf, runExample } from './run-example.ts';

const EXPECTED = [
  'Book updated: War and peace',
  'Book updated: Anna karenina',
  'Book updated: The idiot',
  'prediction (written as v2): box (0, 0)-(10, 20) value 0.9',
  'prediction (written as v1): box (1, 2)-(3, 4) value 0.75',
];

describe('examples/nsq-books', { timeout: 60_000 }, () => {
  before(buildDist);

  test('on its embedded broker: every book and prediction handled, v1 upgraded to v2', async () => {
    const run = runExample('examples/nsq-books/main.ts');
    assert.equal(await exitOf(run), 0, run.err());
    for (const line of EXPECTED) assert.ok(run.out().includes(`${line}\n`), `printed ${line}:\n${run.out()}`);
    const done = /nsq-books: done (.*)\n/.exec(run.out());
    assert.ok(done, run.out());
    assert.deepEqual(JSON.parse(done[1]!).handled, { 'books/student': 3, 'predictions/archive': 4, 'predictions/dashboard#ephemeral': 4 });
  });

  test('against a broker given by URL: its channels end empty, the #ephemeral one is gone', async (t) => {
    const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
    t.after(() => broker.close());
    const run = runExample('examples/nsq-books/main.ts', [`nsq://${broker.tcpAddress}`]);
    assert.equal(await exitOf(run), 0, run.err());
    assert.match(run.out(), /Book updated: War and peace\n/);
    const stats = (await (await fetch(`http://${broker.httpAddress}/stats?format=json`)).json()) as {
      topics: Array<{ topic_name: string; message_count: number; channels: Array<{ channel_name: string; depth: number; in_flight_count: number; message_count: number }> }>;
    };
    const topic = (name: string) => stats.topics.find((x) => x.topic_name === name)!;
    assert.equal(topic('books').message_count, 3);
    assert.equal(topic('predictions').message_count, 4);
    const channels = Object.fromEntries(
      stats.topics.flatMap((x) => x.channels.map((c) => [`${x.topic_name}/${c.channel_name}`, [c.message_count, c.depth, c.in_flight_count]])),
    );
    // Each durable channel got every message and holds none: all were FINed (acked).
    assert.deepEqual(channels, { 'books/student': [3, 0, 0], 'predictions/archive': [4, 0, 0] });
  });
});
