/**
 * The nsqworker talk's system in one command: the workers under workers/<topic>/<channel>.ts,
 * the Tornado handler's publishes, and what became of each message.
 *
 *   node --import tsx examples/nsqworker/main.ts                          # on an embedded broker
 *   node --import tsx examples/nsqworker/main.ts nsq://127.0.0.1:4150     # nsqd or `conveyor broker`
 *   node --import tsx examples/nsqworker/main.ts nsqlookup://127.0.0.1:4161  # discovery via nsqlookupd
 *
 * In production each worker folder runs as its own process: `npx conveyor run examples/nsqworker/workers --url nsq://…`.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { app, type ConsumeOptions, type MessageDefinition, type MessageHandler } from 'conveyor-pipelines';
import { startBroker } from 'conveyor-pipelines/server';
import { publishDemo } from './publish.ts';

interface WorkerModule {
  default: MessageHandler<unknown>;
  message: MessageDefinition<unknown>;
  options?: Omit<ConsumeOptions, 'channel'>;
}

const given = process.argv[2];
const broker = given ? undefined : await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
const url = given ?? `nsq://${broker!.tcpAddress}`;
console.log(`nsqworker: on ${url}`);

// The talk's load_worker: the folder names the topic, the file the channel.
const workers = app({ url });
const root = fileURLToPath(new URL('./workers', import.meta.url));
for (const topic of readdirSync(root)) {
  for (const file of readdirSync(join(root, topic)).filter((f) => f.endsWith('.ts'))) {
    const worker = (await import(pathToFileURL(join(root, topic, file)).href)) as WorkerModule;
    await workers.consume(worker.message, { ...worker.options, channel: file.slice(0, -3) }, worker.default);
  }
}

// What became of each message, per channel: 5 handled on demo, 1 duplicate dropped, 3 dead
// (one out of attempts, one schema violation, one too long); 7 handled on audit, 2 dead.
const outcome: Record<string, Record<string, number>> = {};
const count = (what: string) => (e: { delivery: { channel: string } }) => {
  const channel = (outcome[e.delivery.channel] ??= {});
  channel[what] = (channel[what] ?? 0) + 1;
};
workers.on('processed', count('processed'));
workers.on('duplicate', count('duplicate'));
workers.on('dead', count('dead'));
const settled = () => Object.values(outcome).reduce((n, c) => n + Object.values(c).reduce((a, b) => a + b, 0), 0);

await publishDemo(url);
const until = Date.now() + 20_000;
while (settled() < 18 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
console.log(`nsqworker: ${JSON.stringify(outcome)}`);
await workers.close();
await broker?.close();
process.exitCode = settled() === 18 ? 0 : 1;
