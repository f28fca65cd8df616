/**
 * `conveyor dlq list|replay|purge <url> <topic>`: the dead letters of `<topic>` (channel `dlq` of
 * `<topic>.dead`) from the terminal, the same code the dashboard runs (src/dashboard/dlq.ts).
 * Works on nsq:// (`conveyor broker` or nsqd) and embedded:///dir (a data directory no broker
 * has open), and on every other engine through the transport contract; memory:// is refused, as
 * a CLI process has an engine of its own that holds nothing of yours.
 */
import { parseArgs } from 'node:util';
import { connect } from '../../connect.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { Transport } from '../../core/transport.ts';
import { type DeadLetter, listDeadLetters, MAX_PASS, purgeDeadLetters, replayDeadLetters, type Selection } from '../../dashboard/dlq.ts';
import { checkCliUrl } from '../urls.ts';

export const summary = 'list, replay or purge dead letters: conveyor dlq list|replay|purge <url> <topic> [--id ID]... [--all]';

const USAGE = `usage: conveyor dlq list <url> <topic> [--limit N] [--json]
       conveyor dlq replay <url> <topic> (--id ID ... | --all)
       conveyor dlq purge <url> <topic> (--id ID ... | --all)

  Dead letters of <topic> are the messages of channel "dlq" of <topic>.dead.
  replay publishes each to its original topic, then removes it (at least once: never lost).
  purge removes them for good.

  --limit N     list at most N (default 100, at most ${MAX_PASS})
  --json        one JSON object per dead letter
  --id ID       the dead letter's id, as list prints it (repeatable)
  --all         every dead letter (replay stops at one it has already replayed)
  --idle MS     a read ends after MS without a new message (default 500;
                the first message is waited for max(1000, 4 × MS))
`;

export interface DlqIo {
  out?: (line: string) => void;
  /** The transport to use instead of connecting to the URL (tests, embedding). */
  transport?: Transport;
}

export async function run(args: string[], io: DlqIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      limit: { type: 'string' },
      json: { type: 'boolean' },
      id: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      idle: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  const [action, url, topic, ...rest] = positionals;
  if (action !== 'list' && action !== 'replay' && action !== 'purge') {
    throw new ConveyorError('ERR_BAD_OPTIONS', `dlq wants list, replay or purge, got ${JSON.stringify(action)}`);
  }
  if (url === undefined || topic === undefined || rest.length > 0) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `dlq ${action} takes <url> <topic>, got: ${positionals.slice(1).join(' ') || 'nothing'}`);
  }
  const idleMs = values.idle === undefined ? 500 : wholeNumber(values.idle, '--idle');
  let selection: Selection | undefined;
  if (action !== 'list') {
    if (values.all && values.id) throw new ConveyorError('ERR_BAD_OPTIONS', '--all and --id exclude each other');
    if (!values.all && !values.id) throw new ConveyorError('ERR_BAD_OPTIONS', `dlq ${action} needs --id ID (repeatable) or --all`);
    selection = values.all ? 'all' : values.id!;
  }
  if (!io.transport) {
    if (url.startsWith('memory:')) checkCliUrl(url, 'dlq');
    else if (/^https?:\/\//i.test(url)) checkCliUrl(url, 'dlq');
  }
  const transport = io.transport ?? (await connect(url, { clientId: 'conveyor-dlq' }));
  try {
    if (action === 'list') {
      const limit = values.limit === undefined ? 100 : wholeNumber(values.limit, '--limit');
      const letters = await listDeadLetters(transport, topic, { limit, idleMs });
      for (const letter of letters) out(values.json ? JSON.stringify(letter) : render(letter));
      if (!values.json) out(`${letters.length} dead letter${letters.length === 1 ? '' : 's'} in ${topic.replace(/\.dead$/, '')}.dead${letters.length === limit ? ` (--limit ${limit}; there may be more)` : ''}`);
      return 0;
    }
    const run = action === 'replay' ? replayDeadLetters : purgeDeadLetters;
    const result = await run(transport, topic, selection!, { idleMs });
    out(`${action === 'replay' ? 'replayed' : 'purged'} ${result.done.length}${result.kept ? `, left ${result.kept} in place` : ''}`);
    if (result.missing.length > 0) {
      out(`not found: ${result.missing.join(' ')}`);
      return 1;
    }
    return 0;
  } finally {
    if (!io.transport) await transport.close();
  }
}

function render(l: DeadLetter): string {
  const from = `${l.topic}${l.channel ? `/${l.channel}` : ''}`;
  const body = l.body.json !== undefined ? JSON.stringify(l.body.json) : `${l.body.format} ${l.body.size} B hex ${l.body.hex}${l.body.truncated ? '…' : ''}`;
  return [
    `${l.id}  ${l.code ?? '?'}  from ${from}  attempts ${l.attempts ?? '?'}  died ${l.at ?? '?'}`,
    `  reason: ${l.reason ?? '(none)'}`,
    `  body (${l.body.format}): ${body.length > 2000 ? `${body.slice(0, 2000)}…` : body}`,
  ].join('\n');
}

function wholeNumber(text: string, flag: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new ConveyorError('ERR_BAD_OPTIONS', `${flag} wants a whole number >= 1, got ${JSON.stringify(text)}`);
  return n;
}
