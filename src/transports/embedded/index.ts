/**
 * `embedded:///path/to/dir` — the embedded engine in this process, with its disk queue in that
 * directory: messages past the memory high-water mark, and everything at close, survive a
 * restart, and the topics and channels come back. `?durable=true` confirms a publish only once
 * it is fsynced (memQueueSize 0), so even a kill -9 loses nothing confirmed. Other engine
 * options go in the query as for `memory://` (memQueueSize, msgTimeoutMs, ..., `envelope=false`).
 */
import type { ConnectOptions } from '../../core/transport.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { Transport } from '../../core/transport.ts';
import type { ParsedUrl } from '../../core/url.ts';
import { diskBackend, restoreTopology } from '../../engine/disk/index.ts';
import { Engine } from '../../engine/engine.ts';
import type { EngineOptions } from '../../engine/options.ts';
import { readEnvelope } from '../memory/index.ts';
import { MemoryTransport } from '../memory/transport.ts';

/**
 * @example
 * const transport = await connect('embedded:///var/lib/conveyor?durable=true');
 */
export async function createTransport(parsed: ParsedUrl, _options: ConnectOptions): Promise<Transport> {
  const dir = decodeURIComponent(parsed.url.pathname);
  if (parsed.url.host !== '' || dir === '' || dir === '/') {
    throw new ConveyorError('ERR_BAD_URL', `embedded:// needs an absolute directory and no host, like embedded:///var/lib/conveyor; got ${parsed.url.href}`);
  }
  const params = new URLSearchParams(parsed.params);
  const durable = params.get('durable') === 'true';
  params.delete('durable');
  const envelope = readEnvelope(params, 'embedded');
  const options: Record<string, unknown> = {};
  for (const [key, value] of params) options[key] = value.trim() === '' ? Number.NaN : Number(value);
  if (durable) options.memQueueSize = 0;
  const engine = new Engine({ ...(options as EngineOptions), backend: diskBackend({ dir, durable }) });
  restoreTopology(engine, dir);
  return new MemoryTransport(engine, { kind: 'embedded', persistent: true, envelope, onClose: () => engine.close() });
}
