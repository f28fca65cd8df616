/** `conveyor stats <http://broker:4151>`: topics and channels of an embedded broker (or nsqd), as a table. */
import { parseArgs } from 'node:util';
import { ConveyorError } from '../../core/errors.ts';

export const summary = 'show topics and channels of a broker: conveyor stats [http://127.0.0.1:4151] [--json]';

interface Channel {
  channel_name: string;
  depth: number;
  in_flight_count: number;
  deferred_count: number;
  message_count: number;
  requeue_count: number;
  timeout_count: number;
  clients?: unknown[];
}
interface Topic {
  topic_name: string;
  depth: number;
  message_count: number;
  channels: Channel[];
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('usage: conveyor stats [http://127.0.0.1:4151] [--json]\n');
    return 0;
  }
  const base = (positionals[0] ?? 'http://127.0.0.1:4151').replace(/\/$/, '');
  const res = await fetch(`${base}/stats?format=json`).catch((cause: Error) => {
    throw new ConveyorError('ERR_TRANSPORT', `cannot reach ${base}: ${cause.message}`, { cause });
  });
  if (!res.ok) throw new ConveyorError('ERR_TRANSPORT', `${base}/stats answered ${res.status}`);
  const stats = (await res.json()) as { topics: Topic[] };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
    return 0;
  }
  const rows = [['topic', 'channel', 'depth', 'in flight', 'deferred', 'messages', 'requeued', 'timed out', 'clients']];
  for (const t of stats.topics ?? []) {
    rows.push([t.topic_name, '', String(t.depth), '', '', String(t.message_count), '', '', '']);
    for (const c of t.channels ?? []) {
      rows.push(['', c.channel_name, String(c.depth), String(c.in_flight_count), String(c.deferred_count), String(c.message_count), String(c.requeue_count), String(c.timeout_count), String(c.clients?.length ?? 0)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
  return 0;
}
