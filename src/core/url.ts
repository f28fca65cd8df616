import { ConveyorError } from './errors.ts';

/** The URL schemes Conveyor understands, each served by one adapter under src/transports/. */
export const SCHEMES = ['memory', 'embedded', 'nsq', 'nsqlookup', 'amqp', 'amqps', 'redis', 'rediss', 'nats', 'mqtt', 'mqtts', 'kafka'] as const;
export type Scheme = (typeof SCHEMES)[number];

export interface ParsedUrl {
  scheme: Scheme;
  url: URL;
  /** Query parameters, for adapter options (`?maxInFlight=100&codec=json`). */
  params: URLSearchParams;
}

/** Parses and checks a transport URL once, so every adapter gets a valid URL object. */
export function parseTransportUrl(input: string): ParsedUrl {
  let url: URL;
  try {
    url = new URL(input);
  } catch (cause) {
    throw new ConveyorError('ERR_BAD_URL', `not a valid URL: ${JSON.stringify(input)}`, { cause });
  }
  const scheme = url.protocol.slice(0, -1);
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    throw new ConveyorError(
      'ERR_BAD_URL',
      `unknown transport scheme "${scheme}:" in ${JSON.stringify(input)}; expected one of ${SCHEMES.map((s) => `${s}://`).join(', ')}`,
    );
  }
  return { scheme: scheme as Scheme, url, params: url.searchParams };
}

/**
 * Reads positive-integer options from a URL query, collecting every problem instead of
 * stopping at the first (adapters report them all at once).
 */
export function queryInts(params: URLSearchParams, problems: string[]): (key: string, fallback: number) => number {
  return (key, fallback) => {
    const raw = params.get(key);
    if (raw === null) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) problems.push(`${key}: must be a positive integer, got ${JSON.stringify(raw)}`);
    return n;
  };
}

/** Reads a `true`/`false` option (also `1`/`0`) from a URL query, collecting problems like queryInts. */
export function queryBool(params: URLSearchParams, key: string, fallback: boolean, problems: string[]): boolean {
  const raw = params.get(key);
  if (raw === null) return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  problems.push(`${key}: expected true or false, got ${JSON.stringify(raw)}`);
  return fallback;
}
