/**
 * The "Using NSQ in Python" talk's system in Conveyor: typed CBOR books and predictions
 * published to NSQ and read by async workers on three channels.
 *
 *   node --import tsx examples/nsq-books/main.ts                        # on an embedded broker
 *   node --import tsx examples/nsq-books/main.ts nsq://127.0.0.1:4150   # on nsqd or `conveyor broker`
 *
 * With no URL it starts the embedded broker, served over NSQ's own TCP protocol on a free port,
 * so the workers and the producer talk nsq:// either way. It prints what each worker got, then
 * one line of totals, and exits 0 once every message was handled.
 */
import { startBroker } from 'conveyor-pipelines/server';
import { produce } from './producer.ts';
import { startWorkers } from './worker.ts';

const given = process.argv[2];
const broker = given ? undefined : await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
const url = given ?? `nsq://${broker!.tcpAddress}`;
console.log(`nsq-books: on ${url}${broker ? ` (embedded broker, HTTP ${broker.httpAddress})` : ''}`);

const workers = await startWorkers(url);
const handled = new Map<string, number>();
let done!: () => void;
const allHandled = new Promise<void>((resolve) => (done = resolve));
let expected = Number.POSITIVE_INFINITY;
const check = () => [...handled.values()].reduce((a, b) => a + b, 0) >= expected && done();
workers.on('processed', ({ delivery }) => {
  const key = `${delivery.topic}/${delivery.channel}`;
  handled.set(key, (handled.get(key) ?? 0) + 1);
  check();
});

const sent = await produce(url);
expected = sent.books + 2 * sent.predictions; // books on one channel, predictions on two
check();
const timer = setTimeout(() => {
  console.error(`nsq-books: not everything arrived within 20 s: ${JSON.stringify(Object.fromEntries(handled))}`);
  process.exit(1);
}, 20_000);
await allHandled;
clearTimeout(timer);
console.log(`nsq-books: done ${JSON.stringify({ sent, handled: Object.fromEntries(handled) })}`);
await workers.close();
await broker?.close();
