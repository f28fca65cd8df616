import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PartitionWatermark, WatermarkTracker } from '../../src/transports/kafka/watermark.ts';

describe('kafka PartitionWatermark', () => {
  test('in-order acks move the watermark one by one', () => {
    const w = new PartitionWatermark();
    for (const o of [0, 1, 2]) w.delivered(o);
    assert.equal(w.committable(), undefined, 'nothing acked: nothing to commit');
    w.ack(0);
    assert.equal(w.committable(), 1);
    w.ack(1);
    w.ack(2);
    assert.equal(w.committable(), 3);
    assert.equal(w.inFlight, 0);
  });

  test('an out-of-order ack never moves the commit past a message still in flight', () => {
    const w = new PartitionWatermark();
    for (const o of [10, 11, 12, 13]) w.delivered(o);
    assert.ok(w.ack(12));
    assert.ok(w.ack(13));
    assert.equal(w.committable(), 10, 'first unacked is 10: commit stays at 10 (nothing new)');
    w.markCommitted(10);
    assert.equal(w.committable(), undefined);
    assert.ok(w.ack(11));
    assert.equal(w.committable(), undefined, '10 still in flight');
    assert.ok(w.ack(10));
    assert.equal(w.committable(), 14, 'the whole run 10..13 is done');
    assert.equal(w.inFlight, 0);
  });

  test('gaps in offsets (compaction, transaction markers) do not hold the watermark', () => {
    const w = new PartitionWatermark();
    for (const o of [3, 7, 8, 20]) w.delivered(o);
    w.ack(3);
    assert.equal(w.committable(), 7);
    w.ack(8);
    w.ack(20);
    assert.equal(w.committable(), 7);
    w.ack(7);
    assert.equal(w.committable(), 21);
  });

  test('double acks and unknown offsets are refused', () => {
    const w = new PartitionWatermark();
    w.delivered(1);
    assert.equal(w.ack(1), true);
    assert.equal(w.ack(1), false);
    assert.equal(w.ack(99), false);
    assert.equal(w.ack(0), false);
    assert.equal(w.inFlight, 0);
  });

  test('offsets must ascend until reset(); after reset, older acks land nowhere', () => {
    const w = new PartitionWatermark();
    w.delivered(5);
    w.delivered(6);
    const epoch = w.epoch;
    assert.throws(() => w.delivered(6), RangeError);
    w.ack(5, epoch);
    w.markCommitted(w.committable()!);
    w.reset(); // seek back to the committed offset 6
    assert.equal(w.inFlight, 0);
    w.delivered(6);
    assert.equal(w.ack(6, epoch), false, 'an ack from before the reset is ignored');
    assert.equal(w.committable(), undefined);
    assert.equal(w.ack(6, w.epoch), true);
    assert.equal(w.committable(), 7);
  });

  test('random out-of-order acks: the commit is always the lowest unacked offset', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let round = 0; round < 20; round++) {
      const w = new PartitionWatermark();
      const offsets: number[] = [];
      let o = Math.floor(rand() * 100);
      for (let i = 0; i < 3000; i++) {
        o += 1 + (rand() < 0.1 ? Math.floor(rand() * 5) : 0);
        offsets.push(o);
        w.delivered(o);
      }
      const pending = new Set(offsets);
      const order = [...offsets].sort(() => rand() - 0.5);
      let lastCommit = -1;
      for (const off of order) {
        assert.ok(w.ack(off));
        pending.delete(off);
        const lowest = pending.size > 0 ? Math.min(...(pending.size < 50 ? pending : [offsets.find((x) => pending.has(x))!])) : offsets.at(-1)! + 1;
        assert.equal(w.watermark, lowest);
        const c = w.committable();
        if (c !== undefined) {
          assert.ok(c > lastCommit, 'commits only move forward');
          for (const x of offsets) if (x < c) assert.ok(!pending.has(x), `committed ${c} past in-flight ${x}`);
          w.markCommitted(c);
          lastCommit = c;
        }
      }
      assert.equal(w.committable(), undefined);
      assert.equal(lastCommit, offsets.at(-1)! + 1);
    }
  });
});

describe('kafka WatermarkTracker', () => {
  test('commits per partition, only where the watermark moved', () => {
    const t = new WatermarkTracker();
    const a0 = t.delivered('a', 0, 0);
    t.delivered('a', 0, 1);
    const a1 = t.delivered('a', 1, 100);
    assert.equal(t.inFlight, 3);
    a0.ack(1);
    a1.ack(100);
    const commits = t.commits();
    assert.deepEqual(commits, [{ topic: 'a', partition: 1, offset: '101' }]);
    t.committed(commits);
    assert.deepEqual(t.commits(), []);
    a0.ack(0);
    assert.deepEqual(t.commits(), [{ topic: 'a', partition: 0, offset: '2' }]);
  });

  test('revoke returns the contiguous watermark, drops in-flight, and ignores their late acks', () => {
    const t = new WatermarkTracker();
    const mark = t.delivered('a', 0, 10);
    t.delivered('a', 0, 11);
    t.delivered('a', 0, 12);
    mark.ack(10);
    mark.ack(12);
    assert.deepEqual(t.revoke('a', 0), { topic: 'a', partition: 0, offset: '11' });
    assert.equal(t.inFlight, 0);
    assert.deepEqual(t.partitions(), []);
    // Reassigned: 11 and 12 come again from the committed 11; the old ack of 11 must not count.
    const again = t.delivered('a', 0, 11);
    assert.notEqual(again, mark);
    assert.equal(mark.ack(11), false, 'the revoked mark is detached');
    assert.deepEqual(t.commits(), [{ topic: 'a', partition: 0, offset: '11' }], 'at most the start position, never past 11');
    again.ack(11);
    assert.deepEqual(t.commits(), [{ topic: 'a', partition: 0, offset: '12' }]);
    assert.equal(t.revoke('b', 3), undefined);
  });
});
