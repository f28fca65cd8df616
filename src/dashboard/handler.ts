/**
 * The dashboard as a Node request handler: one page (page.ts), a JSON API under `api/`, and one
 * server-sent-event stream per viewer that carries a snapshot of the viewer's page every second.
 * A single sampler serves every viewer and runs only while someone looks (plus a minute, so the
 * rate chart has its history when the page comes back).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { codecs } from '../core/codecs/index.ts';
import { ConveyorError, isConveyorError } from '../core/errors.ts';
import type { Headers } from '../core/message.ts';
import { newId } from '../core/id.ts';
import type { Engine } from '../engine/engine.ts';
import { isValidName } from '../engine/names.ts';
import type { ConsumerStats } from '../runtime/consumer.ts';
import type { ClientState } from '../server/tcp/client.ts';
import { listDeadLetters, MAX_PASS, purgeDeadLetters, replayDeadLetters, type Selection } from './dlq.ts';
import { engineSource } from './engine-source.ts';
import { RateHistory } from './history.ts';
import { APP_CSS, APP_JS, pageHtml } from './page.ts';
import { counts, snapshot, viewOf } from './snapshot.ts';
import type { Action, DashboardSource, TopicView } from './source.ts';
import type { HandlerTimings } from './timing.ts';

export interface DashboardOptions {
  /** The engine in this process (the broker's, npm start's, a memory:// app's). */
  engine?: Engine;
  /** Any other source (an nsqd over HTTP: `nsqSource`); instead of `engine`. */
  source?: DashboardSource;
  /** The NSQ TCP clients of the broker serving `engine`, to name its consumers. */
  clients?: () => Iterable<ClientState>;
  /** Apps whose consumers are shown (running, processed, retried, dead, p50/p99 handler time). */
  apps?: ReadonlyArray<DashboardApp>;
  /**
   * Exact handler-time percentiles (the latest 1,024 runs) instead of the runtime's histogram
   * buckets, for the consumers that use `timings.middleware()` or `timings.batch()`.
   */
  timings?: HandlerTimings;
  /** Where it is mounted: requests outside it go to `next` (or get a 404). @default '' */
  prefix?: string;
  /** Require `Authorization: Bearer <token>` on the API, the gateway's option. */
  auth?: { token: string };
  /** Show, never change: every action answers 403. @default false */
  readOnly?: boolean;
  /** How often viewers get a snapshot, ms. @default 1000 */
  intervalMs?: number;
  /** Largest body the publish form sends, bytes. @default 1048576 */
  maxPublishBytes?: number;
}

/** What the dashboard reads of an App: its counters, and its handler-time histograms when it has them. */
export interface DashboardApp {
  stats(): ConsumerStats[];
  metricsSource?(): { consumers(): ReadonlyArray<ConsumerStats & { handler: { count: number; quantile(q: number): number } }> };
}

export type NodeHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

export interface Dashboard extends NodeHandler {
  readonly prefix: string;
  /** True when `url` is the dashboard's (under its prefix). */
  owns(url: string): boolean;
  /** Ends the viewers' streams and the sampler; the source's own resources too. */
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Bytes of unread snapshots a viewer may fall behind by before its stream is closed. */
const MAX_VIEWER_BACKLOG = 1024 * 1024;

const ACTIONS = new Set<Action>(['pause', 'unpause', 'empty', 'delete']);
const FORMATS: Record<string, { contentType: string; encode: (text: string) => Uint8Array }> = {
  json: { contentType: 'application/json', encode: (text) => codecs.json.encode(parseJson(text)) },
  cbor: { contentType: 'application/cbor', encode: (text) => codecs.cbor.encode(parseJson(text)) },
  msgpack: { contentType: 'application/msgpack', encode: (text) => codecs.msgpack.encode(parseJson(text)) },
  raw: { contentType: 'application/octet-stream', encode: (text) => new TextEncoder().encode(text) },
};

/**
 * @example
 * const board = dashboard({ engine, prefix: '/dashboard' });
 * http.createServer((req, res) => board(req, res)).listen(8081);
 * // or with express: app.use(board)
 */
export function dashboard(options: DashboardOptions): Dashboard {
  if (!options.engine === !options.source) throw new ConveyorError('ERR_BAD_OPTIONS', 'dashboard: give either engine or source');
  const source = options.source ?? engineSource({ engine: options.engine!, clients: options.clients });
  const prefix = (options.prefix ?? '').replace(/\/+$/, '');
  const intervalMs = options.intervalMs ?? 1000;
  const maxPublish = options.maxPublishBytes ?? 1024 * 1024;
  const readOnly = options.readOnly === true;
  const digest = (text: string) => createHash('sha256').update(text).digest();
  const expectedAuth = options.auth ? digest(`Bearer ${options.auth.token}`) : undefined;
  const history = new RateHistory();
  const viewers = new Set<{ res: ServerResponse; query: URLSearchParams }>();
  let latest: TopicView[] = [];
  let timer: NodeJS.Timeout | undefined;
  let lastUse = 0;
  let sampling: Promise<void> | undefined;

  const consumers = () => (options.apps ?? []).flatMap(consumersOf);
  const build = (query: URLSearchParams) =>
    snapshot({ topics: latest, history, kind: source.kind, canPeek: source.canPeek, readOnly, consumers: consumers(), timings: options.timings }, viewOf(query));

  /** Reads the source and sends every viewer its page; `record` adds the reading to the rate history. */
  async function sample(record = true): Promise<void> {
    latest = await source.topics();
    if (record) history.sample(counts(latest));
    for (const viewer of viewers) {
      // A viewer that stopped reading gets cut off instead of growing our buffer every second;
      // its page reconnects when it reads again.
      if (viewer.res.writableLength > MAX_VIEWER_BACKLOG) {
        viewers.delete(viewer);
        viewer.res.destroy();
        continue;
      }
      viewer.res.write(`event: snapshot\ndata: ${JSON.stringify(build(viewer.query))}\n\n`);
    }
  }
  function tick(): void {
    if (viewers.size === 0 && Date.now() - lastUse > 60_000) {
      clearInterval(timer);
      timer = undefined;
      return;
    }
    // A slow source (an nsqd far away) skips a beat rather than piling samples up.
    sampling ??= sample()
      .catch((error: unknown) => {
        for (const viewer of viewers) viewer.res.write(`event: problem\ndata: ${JSON.stringify({ error: (error as Error).message })}\n\n`);
      })
      .finally(() => (sampling = undefined));
  }
  /** Starts the sampler on first use; the first snapshot waits for one fresh sample. */
  async function use(): Promise<void> {
    lastUse = Date.now();
    if (timer === undefined) {
      timer = setInterval(tick, intervalMs);
      timer.unref();
      await (sampling ??= sample().finally(() => (sampling = undefined)));
    }
  }

  async function api(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    if (expectedAuth && !timingSafeEqual(digest(req.headers.authorization ?? ''), expectedAuth)) {
      throw new HttpError(401, 'missing or wrong bearer token');
    }
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (!get && req.method !== 'POST') throw new HttpError(405, `${req.method} is not allowed`);
    if (!get && readOnly) throw new HttpError(403, 'the dashboard is read-only');
    if (!get) sameOrigin(req);
    switch (`${get ? 'GET' : 'POST'} ${path}`) {
      case 'GET snapshot':
        await use();
        return send(res, 200, build(query));
      case 'GET events':
        await use();
        return stream(req, res, query);
      case 'GET peek': {
        const n = count(query.get('n'), 20);
        return send(res, 200, await source.peek(name(query.get('topic'), 'topic'), name(query.get('channel'), 'channel'), n));
      }
      case 'GET dead': {
        const topic = name(query.get('topic'), 'topic');
        const n = count(query.get('n'), 100);
        const letters = source.deadLetters ? await source.deadLetters(topic, n) : await listDeadLetters(await source.transport(), topic, { limit: n });
        return send(res, 200, { topic, letters });
      }
      case 'POST action': {
        const body = await readJson(req, 64 * 1024);
        const action = body.action as Action;
        if (!ACTIONS.has(action)) throw new HttpError(400, `action must be one of ${[...ACTIONS].join(', ')}`);
        const channel = body.channel === undefined || body.channel === null ? undefined : name(body.channel, 'channel');
        await source.act(action, name(body.topic, 'topic'), channel);
        await sampleSoon();
        return send(res, 200, { ok: true });
      }
      case 'POST publish': {
        const body = await readJson(req, maxPublish * 2 + 1024);
        const topic = name(body.topic, 'topic');
        const format = FORMATS[String(body.format ?? 'json')];
        if (!format) throw new HttpError(400, `format must be one of ${Object.keys(FORMATS).join(', ')}`);
        if (typeof body.body !== 'string') throw new HttpError(400, 'body must be a string');
        const bytes = format.encode(body.body);
        if (bytes.length > maxPublish) throw new HttpError(413, `body of ${bytes.length} bytes is over the ${maxPublish}-byte limit`);
        const id = newId();
        const headers: Headers = { 'content-type': format.contentType, 'conveyor-id': id };
        await source.publish(topic, bytes, headers);
        await sampleSoon();
        return send(res, 200, { id });
      }
      case 'POST replay':
      case 'POST discard': {
        const body = await readJson(req, 1024 * 1024);
        const topic = name(body.topic, 'topic');
        const selection = selectionOf(body.ids);
        const transport = await source.transport();
        // In process every queued letter arrives within a turn or two; over a network, allow a round trip.
        const dlqOptions = source.kind === 'embedded' ? { idleMs: 50, firstWaitMs: 200 } : { idleMs: 300 };
        const result =
          path === 'replay' ? await replayDeadLetters(transport, topic, selection, dlqOptions) : await purgeDeadLetters(transport, topic, selection, dlqOptions);
        await sampleSoon();
        return send(res, 200, result);
      }
      default:
        throw new HttpError(404, `no route for ${req.method} ${path}`);
    }
  }

  /** After an action, the next snapshot shows its effect instead of the one from before it. */
  async function sampleSoon(): Promise<void> {
    await sampling;
    // Not a point of the rate history: the chart's points stay one interval apart.
    await (sampling ??= sample(false).finally(() => (sampling = undefined)));
  }

  function stream(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const viewer = { res, query };
    viewers.add(viewer);
    res.write(`retry: 2000\nevent: snapshot\ndata: ${JSON.stringify(build(query))}\n\n`);
    const gone = () => viewers.delete(viewer);
    req.once('close', gone);
    res.once('close', gone);
    res.once('error', gone);
  }

  const handler = ((req, res, next) => {
    const url = req.url ?? '/';
    if (!owns(url)) {
      if (next) next();
      else send(res, 404, { error: `no route for ${url}` });
      return;
    }
    const parsed = new URL(url.slice(prefix.length) || '/', 'http://dashboard');
    const path = parsed.pathname;
    let done: Promise<void>;
    if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) done = Promise.resolve(asset(res, 'text/html; charset=utf-8', pageHtml(prefix)));
    else if (path === '/app.js') done = Promise.resolve(asset(res, 'text/javascript; charset=utf-8', APP_JS));
    else if (path === '/app.css') done = Promise.resolve(asset(res, 'text/css; charset=utf-8', APP_CSS));
    else if (path.startsWith('/api/')) done = api(req, res, path.slice('/api/'.length), parsed.searchParams);
    else done = Promise.reject(new HttpError(404, `no route for ${path}`));
    done.catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = error instanceof HttpError ? error.status : isConveyorError(error) ? statusOf(error) : 500;
      send(res, status, { error: (error as Error).message, ...(isConveyorError(error) ? { code: error.code } : {}) });
    });
  }) as Dashboard;

  function owns(url: string): boolean {
    if (prefix === '') return true;
    return url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`);
  }

  Object.defineProperty(handler, 'prefix', { value: prefix });
  handler.owns = owns;
  handler.close = async () => {
    clearInterval(timer);
    timer = undefined;
    for (const viewer of viewers) viewer.res.end();
    viewers.clear();
    await sampling?.catch(() => {});
    await source.close?.();
  };
  return handler;
}

/**
 * Actions must come from the page itself. A JSON content type cannot be sent cross-site without a
 * CORS preflight (which this handler never grants), and a browser names the page that sent a
 * request in Origin: so another site open in the same browser cannot delete a topic on a
 * dashboard that has no token.
 */
function sameOrigin(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'actions take a JSON body (content-type: application/json)');
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      throw new HttpError(403, `bad Origin ${JSON.stringify(origin)}`);
    }
    if (host !== req.headers.host) throw new HttpError(403, `a request from ${origin} may not act on this dashboard`);
  }
}

/** An app's consumers with p50/p99 in ms from the runtime's handler-time histogram (per batch for batch consumers). */
function consumersOf(app: DashboardApp): Array<ConsumerStats & { p50?: number; p99?: number; per?: 'batch' }> {
  if (!app.metricsSource) return app.stats();
  return app
    .metricsSource()
    .consumers()
    .map(({ handler, ...c }) => {
      if (handler.count === 0) return c;
      return { ...c, p50: handler.quantile(0.5) * 1000, p99: handler.quantile(0.99) * 1000, ...('batches' in c ? { per: 'batch' as const } : {}) };
    });
}

function statusOf(error: ConveyorError): number {
  switch (error.code) {
    case 'ERR_BAD_NAME':
      return 404;
    case 'ERR_BAD_OPTIONS':
    case 'ERR_ENCODE':
    case 'ERR_DECODE':
      return 400;
    case 'ERR_TOO_LARGE':
      return 413;
    default:
      return error.retryable ? 503 : 500;
  }
}

function name(value: unknown, what: string): string {
  if (typeof value !== 'string' || !isValidName(value)) throw new HttpError(400, `${what} must be a valid name, got ${JSON.stringify(value)}`);
  return value;
}

function count(text: string | null, fallback: number): number {
  if (text === null) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_PASS) throw new HttpError(400, `n must be an integer from 1 to ${MAX_PASS}`);
  return n;
}

function selectionOf(ids: unknown): Selection {
  if (ids === 'all') return 'all';
  if (Array.isArray(ids) && ids.length > 0 && ids.every((id) => typeof id === 'string')) return ids as string[];
  throw new HttpError(400, 'ids must be "all" or a non-empty array of ids');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `body is not JSON: ${(error as Error).message}`);
  }
}

async function readJson(req: IncomingMessage, max: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (declared > max) throw new HttpError(413, `body of ${declared} bytes is over the ${max}-byte limit`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new HttpError(413, `body is over the ${max}-byte limit`);
    chunks.push(chunk);
  }
  const value = parseJson(Buffer.concat(chunks).toString('utf8'));
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'body must be a JSON object');
  return value as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function asset(res: ServerResponse, type: string, text: string): void {
  res.writeHead(200, {
    'content-type': type,
    'content-length': Buffer.byteLength(text),
    // Everything the page loads is its own: no CDN, no inline script.
    'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}
