/**
 * `conveyor load` (`npm run load`): drives the reference pipeline's gateway with traffic —
 * single events and NDJSON batches from several connections for a while — then prints what
 * was accepted and what arrived where (the gateway's /stats, which `conveyor start` extends).
 */
import { parseArgs } from 'node:util';

export const summary = 'drive the reference pipeline with traffic and print what arrived where';

const USAGE = `usage: conveyor load [options]

  --url URL            the gateway (default http://127.0.0.1:8080)
  --seconds N          how long (default 10)
  --connections N      concurrent senders (default 16)
  --batch N            events per NDJSON request; 1 sends single JSON events (default 100)
  -h, --help           this text
`;

const KINDS = ['click', 'view', 'scroll', 'purchase', 'signup'];

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '16' },
      batch: { type: 'string', default: '100' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const base = values.url.replace(/\/$/, '');
  const batch = Math.max(1, Number(values.batch));
  const until = Date.now() + Number(values.seconds) * 1000;
  let accepted = 0;
  let refused = 0;
  let user = 0;
  const event = () => JSON.stringify({ kind: KINDS[user % KINDS.length], user: user++, at: Date.now() });
  const sender = async () => {
    while (Date.now() < until) {
      const body = batch === 1 ? event() : `${Array.from({ length: batch }, event).join('\n')}\n`;
      const res = await fetch(`${base}/v1/topics/events`, {
        method: 'POST',
        headers: { 'content-type': batch === 1 ? 'application/json' : 'application/x-ndjson' },
        body,
      }).catch((e: Error) => ({ ok: false, status: 0, statusText: e.message, text: async () => '' }));
      if (res.ok) accepted += batch;
      else {
        refused += batch;
        if (res.status === 0 || res.status >= 500) await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  const progress = process.stdout.isTTY ? setInterval(() => process.stdout.write(`\rsent ${accepted} accepted, ${refused} refused`), 500) : undefined;
  await Promise.all(Array.from({ length: Number(values.connections) }, sender));
  if (progress) clearInterval(progress);
  const rate = Math.round(accepted / Number(values.seconds));
  process.stdout.write(`${progress ? '\n' : ''}load: ${accepted} events accepted (${rate}/s), ${refused} refused\n`);
  // Let the archive channel flush its last batches before reporting: until everything accepted is
  // archived, or nothing moved for 2 s (a fixed pause was too short over a remote broker).
  const stats = await settledStats(base, accepted);
  if (stats) process.stdout.write(`arrived: ${JSON.stringify(stats)}\n`);
  return refused > 0 && accepted === 0 ? 1 : 0;
}

type Stats = { pipeline?: { archived?: number } } & Record<string, unknown>;

/** /stats once `pipeline.archived` reaches `accepted` or stops moving for 2 s (at most 30 s; at least 0.5 s). */
async function settledStats(base: string, accepted: number): Promise<Stats | undefined> {
  const get = () => fetch(`${base}/stats`).then((r) => r.json() as Promise<Stats>).catch(() => undefined);
  const deadline = Date.now() + 30_000;
  await new Promise((r) => setTimeout(r, 500));
  let last = await get();
  let movedAt = Date.now();
  while (last && Date.now() < deadline) {
    const archived = last.pipeline?.archived;
    if (archived === undefined || archived >= accepted || Date.now() - movedAt > 2000) return last;
    await new Promise((r) => setTimeout(r, 200));
    const next = await get();
    if (next?.pipeline?.archived !== archived) movedAt = Date.now();
    last = next ?? last;
  }
  return last;
}
