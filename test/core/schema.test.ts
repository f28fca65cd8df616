import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { codecs } from '../../src/core/codecs/index.ts';
import { ConveyorError } from '../../src/core/errors.ts';
import { HEADER } from '../../src/core/message.ts';
import { bytesMessage, defineMessage } from '../../src/core/schema.ts';

const isCode = (code: string) => (e: unknown) => e instanceof ConveyorError && e.code === code;

const V3 = z.object({ camera: z.string(), ts: z.date(), score: z.number(), box: z.tuple([z.number(), z.number(), z.number(), z.number()]) });
const Frame = defineMessage({
  name: 'frame',
  version: 3,
  schema: V3,
  upgrade: {
    1: (v1: { cam: string; ts: Date }) => ({ camera: v1.cam, ts: v1.ts, score: 0 }),
    2: (v2: { camera: string; ts: Date; score: number }) => ({ ...v2, box: [0, 0, 0, 0] }),
  },
});

describe('defineMessage', () => {
  test('encode validates and sets content-type, type and version headers', () => {
    const value = { camera: 'c1', ts: new Date(1000), score: 0.5, box: [1, 2, 3, 4] as [number, number, number, number] };
    const { body, headers } = Frame.encode(value);
    assert.deepEqual(headers, { [HEADER.contentType]: 'application/cbor', [HEADER.type]: 'frame', [HEADER.version]: '3' });
    assert.deepEqual(Frame.decode(body, headers), value);
    assert.equal(Frame.topic, 'frame');
  });

  test('encode of an invalid value throws ERR_SCHEMA naming the path, nothing encoded', () => {
    assert.throws(
      () => Frame.encode({ camera: 'c1', ts: new Date(), score: 'high', box: [1, 2, 3, 4] } as never),
      (e: unknown) => isCode('ERR_SCHEMA')(e) && /frame: at "score"/.test((e as Error).message) && !(e as ConveyorError).retryable,
    );
  });

  test('old versions are upgraded step by step: v1 → v2 → v3', () => {
    const v1 = codecs.cbor.encode({ cam: 'old', ts: new Date(5) });
    const out = Frame.decode(v1, { [HEADER.version]: '1' });
    assert.deepEqual(out, { camera: 'old', ts: new Date(5), score: 0, box: [0, 0, 0, 0] });
    // No version header reads as version 1.
    assert.deepEqual(Frame.decode(v1, {}), out);
    const v2 = codecs.cbor.encode({ camera: 'mid', ts: new Date(6), score: 1 });
    assert.deepEqual(Frame.decode(v2, { [HEADER.version]: '2' }).box, [0, 0, 0, 0]);
  });

  test('a newer version than the code knows is ERR_VERSION; a bad header too', () => {
    const body = codecs.cbor.encode({});
    assert.throws(() => Frame.decode(body, { [HEADER.version]: '4' }), isCode('ERR_VERSION'));
    assert.throws(() => Frame.decode(body, { [HEADER.version]: 'x' }), isCode('ERR_VERSION'));
  });

  test('a failing upgrade step is ERR_UPGRADE, an invalid body ERR_SCHEMA, garbage ERR_DECODE', () => {
    const Bad = defineMessage({ name: 'bad', version: 2, schema: z.object({ a: z.number() }), upgrade: { 1: () => { throw new Error('nope'); } } });
    assert.throws(() => Bad.decode(codecs.cbor.encode({}), {}), isCode('ERR_UPGRADE'));
    assert.throws(() => Frame.decode(codecs.cbor.encode({ camera: 1 }), { [HEADER.version]: '3' }), isCode('ERR_SCHEMA'));
    assert.throws(() => Frame.decode(Uint8Array.from([0xff, 0x00]), {}), isCode('ERR_DECODE'));
    assert.throws(() => Frame.decode(codecs.cbor.encode({}), { [HEADER.contentType]: 'text/xml' }), isCode('ERR_UNKNOWN_CONTENT_TYPE'));
  });

  test('decoding follows the content-type header; JSON and MessagePack definitions work', () => {
    const Evt = defineMessage({ name: 'evt', schema: z.object({ n: z.number() }), codec: 'application/json' });
    const { body, headers } = Evt.encode({ n: 1 });
    assert.equal(new TextDecoder().decode(body), '{"n":1}');
    assert.deepEqual(Evt.decode(body, headers), { n: 1 });
    const mp = codecs.msgpack.encode({ n: 2 });
    assert.deepEqual(Evt.decode(mp, { [HEADER.contentType]: 'application/msgpack' }), { n: 2 });
  });

  test('bad definitions report every problem at once', () => {
    assert.throws(
      () => defineMessage({ name: '', version: 3, schema: z.object({}), upgrade: { 1: (x) => x, 7: (x) => x } }),
      (e: unknown) =>
        isCode('ERR_BAD_OPTIONS')(e) &&
        /name/.test((e as Error).message) &&
        /upgrade\.2/.test((e as Error).message) &&
        /upgrade\.7/.test((e as Error).message),
    );
  });

  test('async schemas are refused with a clear error', () => {
    const Async = defineMessage({ name: 'a', schema: z.object({ n: z.number() }).refine(async () => true) });
    assert.throws(() => Async.encode({ n: 1 }), (e: unknown) => e instanceof ConveyorError && /synchronously/.test(e.message));
  });

  test('bytesMessage passes bytes through', () => {
    const Blob = bytesMessage('blob');
    const { body, headers } = Blob.encode(new Uint8Array([1, 2]));
    assert.equal(headers[HEADER.contentType], 'application/octet-stream');
    assert.deepEqual([...Blob.decode(body, headers)], [1, 2]);
    assert.throws(() => Blob.encode('x' as never), isCode('ERR_SCHEMA'));
  });
});
