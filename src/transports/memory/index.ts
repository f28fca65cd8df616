/**
 * `memory://`: the embedded engine in this process, nothing to install or run.
 *
 * - `memory://` gets a private engine, closed with the transport.
 * - `memory://<name>` shares the engine named `<name>` with every other `memory://<name>` in the
 *   process (reference counted, closed with the last transport), so a producer and a worker that
 *   connect separately see the same broker.
 * - Engine options go in the query: `memory://jobs?memQueueSize=1000&msgTimeoutMs=5000`
 *   (memQueueSize, msgTimeoutMs, maxMsgTimeoutMs, maxReqTimeoutMs, maxMsgSize, maxRdyCount,
 *   scanIntervalMs). They apply when the engine is made; a later connect to the same name with
 *   different options is ERR_BAD_OPTIONS.
 * - `?envelope=false` publishes bodies without headers, so NSQ clients of this engine (served by
 *   `conveyor broker` or startBroker) read bare bodies.
 */
import type { ConnectOptions } from '../../core/transport.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { Transport } from '../../core/transport.ts';
import type { ParsedUrl } from '../../core/url.ts';
import { Engine } from '../../engine/engine.ts';
import { type EngineOptions, resolveEngineOptions } from '../../engine/options.ts';
import { acquireNamedEngine, releaseNamedEngine } from './registry.ts';
import { MemoryTransport } from './transport.ts';

export { MemoryDelivery } from './delivery.ts';
export { MemorySubscription } from './subscription.ts';
export { MemoryTransport, type MemoryTransportOptions } from './transport.ts';

/**
 * @example
 * const transport = await connect('memory://');
 */
export async function createTransport(parsed: ParsedUrl, _options: ConnectOptions): Promise<Transport> {
  const { url } = parsed;
  if (url.pathname !== '' && url.pathname !== '/') {
    throw new ConveyorError('ERR_BAD_URL', `memory:// takes a name and no path, got ${url.href}`);
  }
  const params = new URLSearchParams(parsed.params);
  const envelope = readEnvelope(params, 'memory');
  const options = engineOptionsFromQuery(params);
  resolveEngineOptions(options); // ERR_BAD_OPTIONS before any engine is shared or made
  let name: string;
  try {
    name = decodeURIComponent(url.hostname);
  } catch (cause) {
    throw new ConveyorError('ERR_BAD_URL', `memory:// name is not valid percent-encoding: ${url.hostname}`, { cause });
  }
  if (name === '') {
    const engine = new Engine(options);
    return new MemoryTransport(engine, { envelope, onClose: () => engine.close() });
  }
  const engine = acquireNamedEngine(name, options);
  return new MemoryTransport(engine, { envelope, onClose: () => releaseNamedEngine(name, engine) });
}

/** Takes `envelope` out of the query (the rest are engine options): true unless `false`/`0`. */
export function readEnvelope(params: URLSearchParams, scheme: string): boolean {
  const raw = params.get('envelope');
  params.delete('envelope');
  if (raw === null || raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConveyorError('ERR_BAD_OPTIONS', `${scheme}://: envelope: expected true or false, got ${JSON.stringify(raw)}`);
}

/** Query → engine options; the engine validates them (unknown names included) in one place. */
function engineOptionsFromQuery(params: URLSearchParams): EngineOptions {
  const out: Record<string, unknown> = {};
  for (const [key, value] of params) out[key] = value.trim() === '' ? Number.NaN : Number(value);
  return out as EngineOptions;
}
