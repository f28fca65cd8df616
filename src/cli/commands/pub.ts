/** `conveyor pub <url> <topic> [data|-]`: publish one message (JSON by default) to any engine. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { connect } from '../../connect.ts';
import { codecs } from '../../core/codecs/index.ts';
import { ConveyorError } from '../../core/errors.ts';
import { HEADER } from '../../core/message.ts';
import { newId } from '../../core/id.ts';
import { checkCliUrl } from '../urls.ts';

export const summary = 'publish a message: conveyor pub <url> <topic> [data|-] [--cbor|--raw]';

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { cbor: { type: 'boolean' }, raw: { type: 'boolean' }, header: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals.length < 2) {
    process.stdout.write('usage: conveyor pub <url> <topic> [data|-] [--cbor | --raw] [--header k=v ...]\n  data is JSON (default), read from stdin with -\n');
    return values.help ? 0 : 2;
  }
  if (positionals.length > 3) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `pub takes <url> <topic> [data], got ${positionals.length} arguments: quote the data, as in '{"a": 1}'`);
  }
  const [url, topic, data = '-'] = positionals as [string, string, string?];
  checkCliUrl(url, 'pub');
  const text = data === '-' ? readFileSync(0, 'utf8') : data;
  let body: Uint8Array;
  let contentType: string;
  if (values.raw) {
    body = new TextEncoder().encode(text);
    contentType = 'application/octet-stream';
  } else {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      throw new ConveyorError('ERR_DECODE', `the data is not JSON (${(cause as Error).message}); to send it as bytes, add --raw`, { cause });
    }
    body = values.cbor ? codecs.cbor.encode(value) : codecs.json.encode(value);
    contentType = values.cbor ? 'application/cbor' : 'application/json';
  }
  const id = newId();
  const headers: Record<string, string> = { [HEADER.contentType]: contentType, [HEADER.id]: id };
  for (const h of values.header ?? []) {
    const i = h.indexOf('=');
    if (i < 1) throw new ConveyorError('ERR_BAD_OPTIONS', `--header wants k=v, got ${JSON.stringify(h)}`);
    headers[h.slice(0, i)] = h.slice(i + 1);
  }
  const transport = await connect(url);
  try {
    await transport.publish(topic, [{ id, body, headers }]);
  } finally {
    await transport.close();
  }
  process.stdout.write(`${id}\n`);
  return 0;
}
