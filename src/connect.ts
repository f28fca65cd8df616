import { ConveyorError } from './core/errors.ts';
import type { ConnectOptions, Transport, TransportFactory } from './core/transport.ts';
import { parseTransportUrl, type Scheme } from './core/url.ts';

export type { ConnectOptions, TransportFactory } from './core/transport.ts';

/**
 * URL scheme → adapter, loaded on first use so that core never imports a broker client and an
 * application only loads the client it points at. Injected per call, never a global setter.
 */
const ADAPTERS: Partial<Record<Scheme, () => Promise<TransportFactory>>> = {
  // Each adapter adds its line here: scheme: () => import('./transports/<engine>/index.ts').then((m) => m.createTransport),
  nats: () => import('./transports/nats/index.ts').then((m) => m.createTransport),
  nsq: () => import('./transports/nsq/index.ts').then((m) => m.createTransport),
  nsqlookup: () => import('./transports/nsq/index.ts').then((m) => m.createTransport),
  mqtt: () => import('./transports/mqtt/index.ts').then((m) => m.createTransport),
  mqtts: () => import('./transports/mqtt/index.ts').then((m) => m.createTransport),
  kafka: () => import('./transports/kafka/index.ts').then((m) => m.createTransport),
  memory: () => import('./transports/memory/index.ts').then((m) => m.createTransport),
  embedded: () => import('./transports/embedded/index.ts').then((m) => m.createTransport),
  amqp: () => import('./transports/amqp/index.ts').then((m) => m.createTransport),
  amqps: () => import('./transports/amqp/index.ts').then((m) => m.createTransport),
  redis: () => import('./transports/redis/index.ts').then((m) => m.createTransport),
  rediss: () => import('./transports/redis/index.ts').then((m) => m.createTransport),
};

/**
 * Connects to the engine a URL names.
 *
 * @example
 * const transport = await connect('memory://');
 * const rabbit = await connect('amqp://guest:guest@127.0.0.1:5672');
 */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Transport> {
  const parsed = parseTransportUrl(url);
  const load = ADAPTERS[parsed.scheme];
  if (!load) {
    throw new ConveyorError('ERR_BAD_URL', `no transport is available for ${parsed.scheme}:// in this build`);
  }
  const factory = await load();
  return factory(parsed, { ...options });
}
