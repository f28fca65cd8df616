/**
 * `conveyor tail <url> <topic>`: print messages as they arrive, decoded by their content type,
 * on an `#ephemeral` channel of its own (it takes nothing from the real channels and leaves no
 * queue behind). Stops on Ctrl-C or after --count messages.
 */
import { parseArgs } from 'node:util';
import { connect } from '../../connect.ts';
import { codecFor } from '../../core/codecs/index.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { Delivery } from '../../core/message.ts';
import type { Subscription } from '../../core/transport.ts';
import { checkCliUrl } from '../urls.ts';

export const summary = 'print messages as they arrive: conveyor tail <url> <topic> [--channel c] [--count n]';

export async function run(args: string[], stop?: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { channel: { type: 'string' }, count: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals.length < 2) {
    process.stdout.write('usage: conveyor tail <url> <topic> [--channel name] [--count n]\n');
    return values.help ? 0 : 2;
  }
  if (positionals.length > 2) throw new ConveyorError('ERR_BAD_OPTIONS', `tail takes <url> <topic>, got ${positionals.length} arguments: ${positionals.join(' ')}`);
  const [url, topic] = positionals as [string, string];
  checkCliUrl(url, 'tail');
  const channel = values.channel ?? `tail-${process.pid}#ephemeral`;
  const limit = values.count === undefined ? Number.POSITIVE_INFINITY : Number(values.count);
  if (values.count !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw new ConveyorError('ERR_BAD_OPTIONS', `--count wants a positive integer, got ${JSON.stringify(values.count)}`);
  const transport = await connect(url);
  let seen = 0;
  let finish!: () => void;
  let subscription: Subscription | undefined;
  const finished = new Promise<void>((r) => (finish = r));
  // Deliveries already in flight when the count is reached are left unacked: the broker gets them
  // back when the subscription closes (on a named --channel, another reader still sees them).
  subscription = await transport.subscribe(topic, channel, { maxInFlight: Math.min(100, limit) }, (d) => {
    if (seen >= limit) return;
    process.stdout.write(`${render(d)}\n`);
    d.ack();
    if (++seen >= limit) {
      subscription?.pause();
      finish();
    }
  });
  const onSignal = () => finish();
  process.once('SIGINT', onSignal);
  stop?.addEventListener('abort', onSignal, { once: true });
  await finished;
  process.off('SIGINT', onSignal);
  await transport.close();
  return 0;
}

function render(d: Delivery): string {
  let value: unknown;
  try {
    const decoded = codecFor(d.headers['content-type']).decode(d.body);
    value = decoded instanceof Uint8Array ? Buffer.from(decoded).toString('utf8') : decoded;
  } catch {
    value = { hex: Buffer.from(d.body).toString('hex') };
  }
  return JSON.stringify({ id: d.id, attempts: d.attempts, headers: d.headers, value }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}
