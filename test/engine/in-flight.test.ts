import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IdGenerator } from '../../src/engine/ids.ts';
import { InFlight } from '../../src/engine/in-flight.ts';
import { Msg } from '../../src/engine/message.ts';

const msg = (id: string, deadline = 0) => {
  const m = new Msg(id, new Uint8Array(0), undefined, undefined, 0, 0, 0);
  m.deadline = deadline;
  return m;
};

describe('InFlight', () => {
  test('thousands of sequential ids: found by string and by bytes, timed out in deadline order', () => {
    const ids = new IdGenerator();
    const f = new InFlight();
    const all = Array.from({ length: 5000 }, (_, i) => msg(ids.next(), i));
    for (const m of all) f.add(m, true);
    assert.equal(f.count, 5000);
    // Finish every third one, half of them by bytes as a FIN off the wire.
    for (let i = 0; i < all.length; i += 3) {
      const m = all[i]!;
      const found = i % 2 ? f.get(m.id) : f.getBytes(Buffer.from(`FIN ${m.id}\n`, 'latin1'), 4);
      assert.equal(found, m);
      f.remove(m);
      assert.equal(f.get(m.id), undefined);
    }
    const left = all.filter((_, i) => i % 3 !== 0);
    assert.equal(f.count, left.length);
    const expired = f.expired(2999)!;
    assert.deepEqual(
      expired.map((m) => m.deadline),
      left.filter((m) => m.deadline <= 2999).map((m) => m.deadline),
    );
    assert.equal(f.expired(2999), undefined);
    assert.equal(f.takeAll().length, left.length - expired.length);
    assert.equal(f.count, 0);
  });

  test('ids sharing a slot, ids of another form and garbled FIN bytes', () => {
    const f = new InFlight();
    const a = msg('0010000000000001');
    const b = msg('0020000000000001'); // the same last 7 digits as a
    const odd = msg('not-an-engine-id');
    for (const m of [a, b, odd]) f.add(m, true);
    assert.equal(f.getBytes(Buffer.from('0020000000000001'), 0), b);
    assert.equal(f.getBytes(Buffer.from('0030000000000001'), 0), undefined);
    assert.equal(f.getBytes(Buffer.from('not-an-engine-id'), 0), odd);
    assert.equal(f.getBytes(Buffer.from('zzzzzzzzzzzzzzzz'), 0), undefined);
    f.remove(b);
    assert.equal(f.get('0020000000000001'), undefined);
    assert.equal(f.get('0010000000000001'), a);
    assert.deepEqual(
      f.expired(0)!.map((m) => m.id),
      ['0010000000000001', 'not-an-engine-id'],
    );
  });

  test('a re-tracked (touched) message times out by its new deadline; one with its own deadline is scanned apart', () => {
    const f = new InFlight();
    const [a, b, c] = ['000000000000000a', '000000000000000b', '000000000000000c'].map((id, i) => msg(id, 10 + i));
    for (const m of [a, b, c]) f.add(m!, true);
    a!.deadline = 100;
    f.retrack(a!, true);
    b!.deadline = 5;
    f.retrack(b!, false);
    assert.deepEqual(f.expired(50)!.map((m) => m.id).sort(), ['000000000000000b', '000000000000000c']);
    assert.deepEqual(f.expired(100)!.map((m) => m.id), ['000000000000000a']);
    assert.equal(f.count, 0);
  });

  test('a message timed out by one consumer and delivered to another is not timed out again by the first', () => {
    const first = new InFlight();
    const second = new InFlight();
    const m = msg('0000000000000001', 10);
    first.add(m, true);
    first.remove(m); // as a REQ would: its entry in first's FIFO is now stale
    m.deadline = 1000;
    second.add(m, true);
    assert.equal(first.expired(Number.MAX_SAFE_INTEGER), undefined);
    assert.equal(first.count, 0);
    assert.equal(second.expired(999), undefined);
    assert.deepEqual(second.expired(1000), [m]);
  });

  test('out-of-order finishing behind a stuck head keeps the FIFO bounded by the live count', () => {
    const ids = new IdGenerator();
    const f = new InFlight();
    const stuck = msg(ids.next(), 1);
    f.add(stuck, true);
    for (let i = 0; i < 200_000; i++) {
      const m = msg(ids.next(), 2);
      f.add(m, true);
      f.remove(m);
    }
    assert.equal(f.count, 1);
    assert.ok(f.tracked <= 128, `FIFO holds ${f.tracked} entries for 1 live message`);
    assert.deepEqual(f.expired(1), [stuck]);
    assert.equal(f.expired(Number.MAX_SAFE_INTEGER), undefined);
  });
});
