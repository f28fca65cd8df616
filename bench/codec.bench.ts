/**
 * Codec choice, measured: encode+decode round trips per second of a small record (~100 B, the
 * seeds' frame metadata) and a ~2 KB nested one, through each candidate library, side by side.
 * "conveyor cbor" is the shipped codec: cbor-x behind the well-formedness scan that makes
 * untrusted input safe, so its row against raw cbor-x shows what safety costs.
 */
import { decode as cborgDecode, encode as cborgEncode } from 'cborg';
import { Decoder as CborxDecoder, Encoder as CborxEncoder } from 'cbor-x';
import { decode as mpDecode, encode as mpEncode } from '@msgpack/msgpack';
import { pack, unpack } from 'msgpackr';
import { codecs } from '../src/core/codecs/index.ts';
import { median, record, repeat, save } from './lib.ts';

const small = { id: 123456, camera: 'cam-01', ts: 1_700_000_000_000, score: 0.87, box: [10, 20, 110, 220], label: 'person' };
const large = {
  frame: 991,
  camera: { id: 'cam-07', site: 'apron-3', tags: ['north', 'gate-12', 'day'] },
  detections: Array.from({ length: 20 }, (_, i) => ({ id: i, label: i % 2 ? 'vehicle' : 'person', score: 0.5 + i / 100, box: [i, i * 2, i * 3, i * 4] })),
  meta: { model: 'yolo-x', version: '2.3.1', latencyMs: 12.5 },
};

const cborx = { enc: new CborxEncoder({ useRecords: false, tagUint8Array: false, variableMapSize: true }), dec: new CborxDecoder({ useRecords: false, mapsAsObjects: true }) };

const candidates: Record<string, { encode: (v: unknown) => Uint8Array; decode: (b: Uint8Array) => unknown }> = {
  'conveyor cbor (cbor-x + scan)': codecs.cbor,
  'cbor-x (raw)': { encode: (v) => cborx.enc.encode(v), decode: (b) => cborx.dec.decode(b) },
  cborg: { encode: (v) => cborgEncode(v), decode: (b) => cborgDecode(b) },
  'conveyor msgpack (@msgpack/msgpack)': codecs.msgpack,
  msgpackr: { encode: (v) => pack(v), decode: (b) => unpack(b) },
  '@msgpack/msgpack (raw)': { encode: (v) => mpEncode(v), decode: (b) => mpDecode(b) },
  'conveyor json': codecs.json,
};

function roundTrips(codec: (typeof candidates)[string], value: unknown, ms = 300): number {
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) codec.decode(codec.encode(value));
    n += 100;
  }
  return n / (ms / 1000);
}

for (const [label, value] of [
  ['small record', small],
  ['2 KB record', large],
] as const) {
  const size = codecs.cbor.encode(value).length;
  const baseline = median(await repeat(5, () => roundTrips(candidates['cbor-x (raw)']!, value)));
  for (const [name, codec] of Object.entries(candidates)) {
    const runs = await repeat(5, () => roundTrips(codec, value));
    record({
      name: `${name}, ${label}`,
      perSecond: median(runs),
      runs,
      notes: `${codec.encode(value).length} B (cbor ${size} B); ${(median(runs) / baseline).toFixed(2)}× cbor-x raw; encode+decode round trips`,
    });
  }
}
save('codec', 'Encode+decode round trips per second for each codec library considered; the shipped codecs are the "conveyor" rows.');
