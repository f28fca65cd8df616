/**
 * issue 9, item 4: dead letters are logged (rate-limited), counted where /stats and /metrics
 * read, and their reason names what was wrong with the body.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { connect } from '../../src/connect.ts';
import { HEADER, type Delivery } from '../../src/core/message.ts';
import { defineMessage } from '../../src/core/schema.ts';
import { gateway } from '../../src/gateway/index.ts';
import { app } from '../../src/runtime/app.ts';
import { deadLetterLog } from '../../src/runtime/dead-letter-log.ts';
import type { FailureEvent } from '../../src/runtime/events.ts';
import { ConveyorError, PermanentError } from '../../src/core/errors.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';
import { collect } from './helpers.ts';

function deadEvent(id: string, error: Error, deadTopic = 'jobs.dead'): FailureEvent & { deadTopic: string } {
  const delivery = { id, topic: 'jobs', channel: 'work', attempts: 1 } as unknown as Delivery;
  return { delivery, error, deadTopic };
}

describe('dead-letter log', () => {
  test('the first per dead topic and code in a window in full, the rest as one count', async () => {
    const lines: string[] = [];
    const log = deadLetterLog((l) => lines.push(l), { everyMs: 50 });
    for (let i = 0; i < 5; i++) log.dead(deadEvent(`m${i}`, new ConveyorError('ERR_SCHEMA', `job: bad ${i}`)));
    log.dead(deadEvent('p1', new PermanentError('no customer')));
    log.dead(deadEvent('o1', new ConveyorError('ERR_SCHEMA', 'other'), 'other.dead'));
    assert.equal(lines.length, 3, lines.join('\n'));
    assert.match(lines[0]!, /dead letter: message m0 on jobs\/work after 1 attempt → jobs\.dead: ERR_SCHEMA: job: bad 0/);
    assert.match(lines[1]!, /message p1 .*ERR_PERMANENT: no customer/);
    assert.match(lines[2]!, /message o1 .*→ other\.dead/);
    await waitFor(() => lines.length === 4, 'the count line', 2000);
    assert.match(lines[3]!, /4 more dead letters to jobs\.dead \(ERR_SCHEMA\)/);
    // A new window starts with a full line again.
    log.dead(deadEvent('m9', new ConveyorError('ERR_SCHEMA', 'job: bad 9')));
    assert.match(lines[4]!, /message m9/);
    log.flush();
    assert.equal(lines.length, 5, 'nothing held back, nothing more to say');
  });

  test('a raw body that fails a schema: logged, counted in stats, /stats and /metrics, reason names the body', async (t) => {
    const url = `memory://${uniqueName('dl')}?scanIntervalMs=5`;
    const transport = await connect(url);
    t.after(() => transport.close());
    const topic = uniqueName('ev');
    // `at` is also Uint8Array.prototype.at: today's reason read "expected number, received function".
    const Ev = defineMessage({ name: 'ev', topic, schema: z.object({ kind: z.string(), at: z.number() }) });
    const lines: string[] = [];
    const a = app({ url, deadLetterLog: (l) => lines.push(l) });
    t.after(() => a.close({ force: true }));
    await a.consume(Ev, { channel: 'work' }, () => {});
    const gw = await gateway({ transport: a, topics: { [topic]: Ev } });
    t.after(() => gw.close());
    const dead = await collect(transport, `${topic}.dead`);
    await transport.publish(topic, [{ id: 'raw1', body: new TextEncoder().encode('hello'), headers: { [HEADER.contentType]: 'application/octet-stream' } }]);
    await waitFor(() => dead.length === 1, 'the dead letter', 5000);
    const reason = dead[0]!.headers[HEADER.deadReason]!;
    assert.doesNotMatch(reason, /function/);
    assert.match(reason, /the body is 5 raw bytes \("hello"\) \(content-type application\/octet-stream\), not an encoded ev/);
    assert.equal(dead[0]!.headers[HEADER.deadCode], 'ERR_SCHEMA');

    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, new RegExp(`message raw1 on ${topic}/work after 1 attempt → ${topic}\\.dead: ERR_SCHEMA: ev: the body is 5 raw bytes`));
    assert.equal(a.stats()[0]!.dead, 1);

    const stats = (await (await fetch(`${gw.url}/stats`)).json()) as { consumers: Array<{ topic: string; dead: number }> };
    assert.deepEqual(
      stats.consumers.map((c) => [c.topic, c.dead]),
      [[topic, 1]],
    );
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`^conveyor_messages_consumed_total\\{topic="${topic}",channel="work",outcome="dead"\\} 1$`, 'm'));
    assert.match(metrics, /^# TYPE conveyor_messages_consumed_total counter$/m);
  });

  test('by default an app logs dead letters on stderr; deadLetterLog: false keeps it quiet; discards are logged too', async (t) => {
    const url = `memory://${uniqueName('dl')}?scanIntervalMs=5`;
    const topic = uniqueName('ev');
    const Ev = defineMessage({ name: 'ev', topic, schema: z.object({ n: z.number() }) });
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      if (String(chunk).includes(topic)) written.push(String(chunk));
      return (write as (...a: unknown[]) => boolean).call(process.stderr, chunk, ...rest);
    }) as typeof process.stderr.write;
    t.after(() => {
      process.stderr.write = write;
    });
    const loud = app({ url });
    const quiet = app({ url, deadLetterLog: false });
    for (const [a, channel] of [[loud, 'loud'], [quiet, 'quiet']] as const) {
      t.after(() => a.close({ force: true }));
      await a.consume(Ev, { channel }, () => {
        throw new PermanentError('nope');
      });
    }
    await loud.publish(Ev, { n: 1 });
    await waitFor(() => loud.stats()[0]!.dead === 1 && quiet.stats()[0]!.dead === 1, 'dead counted on both', 5000);
    assert.equal(written.length, 1, written.join(''));
    assert.match(written[0]!, new RegExp(`on ${topic}/loud .*ERR_PERMANENT: nope\n$`));

    // With dead-lettering off the message is acked with no copy anywhere: the log line is its trace.
    const lines: string[] = [];
    const discarding = app({ url, deadLetterLog: (l) => lines.push(l) });
    t.after(() => discarding.close({ force: true }));
    await discarding.consume(Ev, { channel: 'discard', deadLetter: false }, () => {
      throw new PermanentError('gone');
    });
    await discarding.publish(Ev, { n: 2 });
    await waitFor(() => discarding.stats()[0]!.discarded === 1, 'discarded counted', 5000);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, new RegExp(`on ${topic}/discard after 1 attempt → nowhere \\(discarded: deadLetter is false\\): ERR_PERMANENT: gone`));
  });
});

test('a body that decodes to an array, a primitive or null names what it decoded to; an object keeps the schema words', () => {
  const Ev = defineMessage({ name: 'ev', schema: z.object({ at: z.number() }) });
  const json = { [HEADER.contentType]: 'application/json' };
  const reason = (text: string) => {
    try {
      Ev.decode(new TextEncoder().encode(text), json);
    } catch (e) {
      assert.equal((e as ConveyorError).code, 'ERR_SCHEMA');
      return (e as Error).message;
    }
    assert.fail(`${text} decoded`);
  };
  assert.match(reason('[1,2]'), /^ev: the body \(content-type application\/json\) decoded to an array of 2 items, which the schema rejects: /);
  assert.match(reason('"x"'), /decoded to a string, which the schema rejects/);
  assert.match(reason('null'), /decoded to null, which the schema rejects/);
  assert.equal(reason('{"at":"1"}'), 'ev: at "at": Invalid input: expected number, received string');
  // A schema that takes bytes still gets them.
  const Bytes = defineMessage({ name: 'b', codec: 'application/octet-stream', schema: z.instanceof(Uint8Array) });
  assert.deepEqual(Bytes.decode(new Uint8Array([1, 2]), { [HEADER.contentType]: 'application/octet-stream' }), new Uint8Array([1, 2]));
});
