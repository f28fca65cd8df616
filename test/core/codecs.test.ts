import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encode as rawCborEncode } from 'cbor-x';
import { cborCodec, codecFor, codecs, jsonCodec, msgpackCodec } from '../../src/core/codecs/index.ts';
import { ConveyorError } from '../../src/core/errors.ts';

const isCode = (code: string) => (e: unknown) => e instanceof ConveyorError && e.code === code;

describe('codecFor', () => {
  test('picks by content type, tolerates parameters and case, defaults to CBOR', () => {
    assert.equal(codecFor(undefined), codecs.cbor);
    assert.equal(codecFor('application/json; charset=utf-8'), codecs.json);
    assert.equal(codecFor('Application/MsgPack'), codecs.msgpack);
    assert.equal(codecFor('application/octet-stream'), codecs.raw);
    assert.throws(() => codecFor('text/xml'), isCode('ERR_UNKNOWN_CONTENT_TYPE'));
  });
});

describe('CBOR', () => {
  const cbor = codecs.cbor;
  test('round-trips dates, bigints, Maps, typed arrays, nested records, null and undefined', () => {
    const value = {
      at: new Date('2021-09-06T10:00:00.123Z'),
      small: 42,
      neg: -7,
      big: 2n ** 70n,
      negBig: -(2n ** 66n),
      int64: 2n ** 63n,
      map: new Map<unknown, unknown>([
        [1, 'one'],
        ['k', [1, 2]],
      ]),
      bytes: new Uint8Array([1, 2, 3]),
      floats: new Float64Array([1.5, -2.25]),
      nested: { a: { b: { c: [true, false, null] } } },
      missing: undefined,
      text: 'héllo ✓',
    };
    const out = cbor.decode(cbor.encode(value)) as typeof value;
    assert.equal(out.at.getTime(), value.at.getTime());
    assert.equal(out.big, value.big);
    assert.equal(out.negBig, value.negBig);
    assert.equal(out.int64, value.int64);
    assert.equal(out.small, 42);
    assert.deepEqual([...out.map], [...value.map]);
    assert.deepEqual([...out.bytes], [1, 2, 3]);
    assert.ok(out.floats instanceof Float64Array);
    assert.deepEqual([...out.floats], [1.5, -2.25]);
    assert.deepEqual(out.nested, value.nested);
    assert.ok('missing' in out && out.missing === undefined);
    assert.equal(out.text, value.text);
  });

  test('writes standard tags only (dates tag 1, bignums tag 2) and minimal map headers', () => {
    const bytes = cbor.encode({ d: new Date(0) });
    assert.equal(bytes[0], 0xa1, 'map of one entry in one byte');
    assert.equal(bytes[3], 0xc1, 'tag 1: epoch-based date');
    assert.equal(cbor.encode(2n ** 70n)[0], 0xc2);
  });

  test('a declared length larger than the input is an error, not an allocation', () => {
    const before = process.memoryUsage().rss;
    for (const bad of [
      [0x5a, 0xff, 0xff, 0xff, 0xff, 1, 2], // byte string of 4 GB
      [0x7b, 0, 0, 0, 1, 0, 0, 0, 0, 0x61], // text of 2^32
      [0x9a, 0xff, 0xff, 0xff, 0xff, 0], // array of 4G items
      [0xba, 0xff, 0xff, 0xff, 0xff, 0], // map of 4G entries
      [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // array of 2^64 items
    ]) {
      assert.throws(() => cbor.decode(Uint8Array.from(bad)), isCode('ERR_DECODE'), `bytes ${bad}`);
    }
    assert.ok(process.memoryUsage().rss - before < 64e6);
  });

  test('trailing bytes, truncation at every cut, reserved codes and stray breaks are ERR_DECODE', () => {
    const good = cbor.encode({ a: [1, 'two', { three: 3n ** 50n }], b: new Date(1000), c: 'x'.repeat(300) });
    assert.throws(() => cbor.decode(Uint8Array.from([...good, 0])), isCode('ERR_DECODE'));
    for (let cut = 0; cut < good.length; cut++) {
      assert.throws(() => cbor.decode(good.subarray(0, cut)), isCode('ERR_DECODE'), `cut at ${cut}`);
    }
    assert.throws(() => cbor.decode(Uint8Array.from([0x1c])), isCode('ERR_DECODE'));
    assert.throws(() => cbor.decode(Uint8Array.from([0xff])), isCode('ERR_DECODE'));
    assert.throws(() => cbor.decode(Uint8Array.from([0x5f, 0x61, 0x61, 0xff])), isCode('ERR_DECODE'), 'text chunk in a byte string');
  });

  test('indefinite-length items are accepted when well formed', () => {
    assert.deepEqual(cbor.decode(Uint8Array.from([0x9f, 0x01, 0x02, 0xff])), [1, 2]);
    assert.deepEqual(cbor.decode(Uint8Array.from([0xbf, 0x61, 0x61, 0x01, 0xff])), { a: 1 });
  });

  test('nesting is bounded without recursion', () => {
    const deep = new Uint8Array(200_000).fill(0x81);
    assert.throws(() => cbor.decode(deep), (e: unknown) => isCode('ERR_DECODE')(e) && /nesting deeper than 100/.test((e as Error).message));
    const ok = Uint8Array.from([...new Uint8Array(50).fill(0x81), 0x01]);
    assert.doesNotThrow(() => cbor.decode(ok));
    assert.throws(() => cborCodec({ maxDepth: 10 }).decode(ok), isCode('ERR_DECODE'));
  });

  test('"__proto__" keys never reach a prototype', () => {
    const hostile = rawCborEncode(new Map<string, unknown>([['__proto__', { polluted: true }], ['a', 1]]));
    assert.throws(() => cbor.decode(hostile), isCode('ERR_DECODE'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('bodies past the size limit are ERR_TOO_LARGE', () => {
    assert.throws(() => cborCodec({ maxBytes: 10 }).decode(new Uint8Array(11)), isCode('ERR_TOO_LARGE'));
  });

  test('random mutations of valid encodings never throw anything but ConveyorError', () => {
    const seeds = [
      cbor.encode({ a: 1, b: [1, 2, { c: 'd' }], e: new Date(5), f: 2n ** 80n, g: new Uint8Array(5) }),
      cbor.encode([new Map([[1, 2]]), new Float32Array([1]), 'txt', null, undefined, -1.5]),
    ];
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 5000; i++) {
      const input = Uint8Array.from(seeds[i % seeds.length]!);
      const flips = 1 + (rand() % 4);
      for (let f = 0; f < flips; f++) input[rand() % input.length] = rand() & 0xff;
      try {
        cbor.decode(input);
      } catch (e) {
        assert.ok(e instanceof ConveyorError, `non-Conveyor error for ${Buffer.from(input).toString('hex')}: ${e}`);
      }
    }
  });
});

describe('JSON and MessagePack', () => {
  test('JSON round-trips, rejects malformed UTF-8 and text, keeps __proto__ as an own key', () => {
    const json = jsonCodec();
    assert.deepEqual(json.decode(json.encode({ a: [1, 'b'] })), { a: [1, 'b'] });
    assert.throws(() => json.decode(new TextEncoder().encode('{"a":')), isCode('ERR_DECODE'));
    assert.throws(() => json.decode(Uint8Array.from([0x22, 0xff, 0x22])), isCode('ERR_DECODE'));
    assert.throws(() => json.encode(1n), isCode('ERR_ENCODE'));
    const out = json.decode(new TextEncoder().encode('{"__proto__":{"polluted":1}}')) as object;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('MessagePack round-trips bigints and refuses lying lengths and __proto__ keys', () => {
    const mp = msgpackCodec();
    assert.deepEqual(mp.decode(mp.encode({ a: 1, big: 2n ** 62n })), { a: 1, big: 2n ** 62n });
    assert.throws(() => mp.decode(Uint8Array.from([0xc6, 0xff, 0xff, 0xff, 0xff, 1])), isCode('ERR_DECODE'));
    assert.throws(() => mp.decode(Uint8Array.from([0x81, 0xa9, ...new TextEncoder().encode('__proto__'), 0x01])), isCode('ERR_DECODE'));
    assert.throws(() => mp.decode(new Uint8Array(200_000).fill(0x91)), isCode('ERR_DECODE'));
  });
});
