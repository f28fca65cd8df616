/**
 * `conveyor stats <amqp|redis|nats|kafka|mqtt URL> [topic[:channel] ...]`: the engine's own
 * figures through its transport's `stats()`, as a table (or JSON). A cell the engine does not
 * report is `-`, never a guessed 0; the engine's note says what it cannot tell.
 */
import { connect } from '../connect.ts';
import { ConveyorError } from '../core/errors.ts';
import type { StatsSelection, TransportStats } from '../core/transport.ts';
import { checkCliUrl } from './urls.ts';

/** `events:archive events:counts jobs` → one selection per topic, channels gathered. */
export function parseSelection(args: string[]): StatsSelection[] {
  const byTopic = new Map<string, StatsSelection>();
  for (const arg of args) {
    const i = arg.indexOf(':');
    const topic = i < 0 ? arg : arg.slice(0, i);
    const channel = i < 0 ? undefined : arg.slice(i + 1);
    if (!topic || channel === '') throw new ConveyorError('ERR_BAD_OPTIONS', `stats wants topic or topic:channel, got ${JSON.stringify(arg)}`);
    const entry = byTopic.get(topic) ?? { topic };
    byTopic.set(topic, entry);
    if (channel !== undefined) (entry.channels ??= []).push(channel);
  }
  return [...byTopic.values()];
}

export async function engineStats(url: string, args: string[], json: boolean): Promise<number> {
  checkCliUrl(url, 'stats');
  const select = parseSelection(args);
  const transport = await connect(url);
  let stats: TransportStats;
  try {
    if (!transport.stats) throw new ConveyorError('ERR_BAD_URL', `${transport.kind}:// reports no statistics`);
    stats = await transport.stats(select);
  } finally {
    await transport.close();
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
    return 0;
  }
  const cell = (n: number | undefined) => (n === undefined ? '-' : String(n));
  const rows = [['topic', 'channel', 'messages', 'depth', 'in flight', 'consumers', 'lag']];
  for (const t of stats.topics) {
    rows.push([t.topic, '', cell(t.messages), '', '', '', '']);
    for (const c of t.channels) rows.push(['', c.channel, '', cell(c.depth), cell(c.inFlight), cell(c.consumers), cell(c.lag)]);
  }
  if (stats.topics.length > 0) {
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) process.stdout.write(`${r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
  } else {
    process.stdout.write(`${stats.kind}: no topics to report\n`);
  }
  if (stats.note) process.stdout.write(`(${stats.note})\n`);
  return 0;
}
