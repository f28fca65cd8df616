/**
 * HTTP ingestion: `POST /v1/topics/:topic` with a JSON or CBOR body (one message) or NDJSON (one
 * per line). Everything in a request is validated first, then published in one transport call,
 * and the answer (`201 {"ids": [...]}`) goes out only after the broker confirmed — so a request
 * is all or nothing: a 400 publishes nothing, a 503 means nothing was confirmed and the client
 * may send the whole request again.
 *
 * | status | when |
 * |---|---|
 * | 400 | bad JSON/CBOR/NDJSON (or not UTF-8), nesting over `maxDepth`, a schema violation (the reason, and the line for NDJSON), a malformed `%` escape in the topic, or a CBOR value with no JSON form on an untyped topic |
 * | 401 | `auth.token` set and the bearer token is missing or wrong (compared in constant time) |
 * | 404 | a topic the gateway does not serve |
 * | 408 | the body did not arrive within `bodyTimeoutMs` (headers later than `headersTimeoutMs`: Node answers 408 and closes) |
 * | 413 | body over `maxBodyBytes` — refused from Content-Length before reading, or cut off when streaming |
 * | 415 | a Content-Type other than JSON, NDJSON or CBOR |
 * | 429 | more than `maxConcurrent` requests with their body in, waiting for confirms (Retry-After) |
 * | 503 | the broker did not confirm (down, closed), or not within `publishTimeoutMs` (a stalled socket): Retry-After |
 *
 * An answer given before the body is all in (401, 404, 413, 415) keeps reading and discarding
 * the rest for up to `drainTimeoutMs`, so that the client reads its answer instead of a reset.
 *
 * Also `GET /healthz`, `GET /stats` (JSON) and `GET /metrics` (Prometheus text format).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cborCodec, DEFAULT_DECODE_LIMITS } from '../core/codecs/index.ts';
import { ConveyorError, isConveyorError, isRetryable } from '../core/errors.ts';
import type { MessageDefinition } from '../core/schema.ts';
import type { OutgoingMessage } from '../core/message.ts';
import type { Transport } from '../core/transport.ts';
import { resolvePublishTimeout } from '../runtime/options.ts';
import { bodyType, HttpError, type ParseLimits, parse, readBody } from './body.ts';
import { type AppMetricsSource, appFamilies, PROMETHEUS_CONTENT_TYPE, registryOf } from '../observability/metrics.ts';
import { publishSpan, serverSpan } from '../observability/tracing.ts';
import { Metrics } from './metrics.ts';

/** An App (publishing through its transport) rather than a bare Transport: its consumers' figures join /stats and /metrics. */
interface AppLike {
  stats(): unknown[];
  metricsSource(): AppMetricsSource;
}
function isApp(source: unknown): source is AppLike {
  return typeof (source as { metricsSource?: unknown }).metricsSource === 'function';
}

export interface GatewayOptions {
  /** Where messages go: a transport, or anything with `transport()` (an App). */
  transport: Transport | { transport(): Promise<Transport> };
  /**
   * Publishes instead of `transport.publish`, saying how it ended: `spooled` answers 202 Accepted
   * instead of 201 (pass an App with a spool: `(topic, messages) => pipeline.publishEncoded(topic, messages)`).
   */
  publish?: (topic: string, messages: OutgoingMessage[]) => Promise<'confirmed' | 'spooled'>;
  /** Topics served; with a definition, bodies are validated and encoded with it, else passed as they came. */
  topics: Record<string, MessageDefinition<any> | null>;
  /** @default 0 (any free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Largest request body, bytes. @default 1048576 */
  maxBodyBytes?: number;
  /** Requests waiting for confirms at once before 429; a request counts only once its body is in. @default 1024 */
  maxConcurrent?: number;
  /** Deepest nesting of arrays/objects (maps) in a JSON or CBOR body, levels. @default 100 */
  maxDepth?: number;
  /** A request's headers must all arrive within this, ms; later, Node answers 408 and closes. @default 10000 */
  headersTimeoutMs?: number;
  /** A request's body must all arrive within this after its headers, ms; later, 408 and close. @default 30000 */
  bodyTimeoutMs?: number;
  /** After an answer given before the body is in (401/404/413/415), how long the rest is read and discarded before closing, ms. @default 5000 */
  drainTimeoutMs?: number;
  /**
   * Open connections at once, idle ones included; past it a new connection is closed as soon as
   * it is accepted (Node's `server.maxConnections`), so a flood of idle sockets cannot exhaust
   * file descriptors. Idle ones go after `headersTimeoutMs` (no request) or 5 s keep-alive. @default 10000
   */
  maxConnections?: number;
  /** Require `Authorization: Bearer <token>` on POSTs. */
  auth?: { token: string };
  /**
   * Longest wait for the broker's confirm, ms; past it the answer is 503 with Retry-After, so a
   * stalled broker socket costs clients this, not the heartbeat's minute. The publish may still
   * land after it: a client's retry is then a duplicate, never a loss (at least once).
   * `Infinity`: no deadline. @default 10000
   */
  publishTimeoutMs?: number;
  /** Retry-After on 429/503, seconds. @default 1 */
  retryAfterSeconds?: number;
  /** More facts for `/stats` (the reference pipeline adds what arrived where). */
  extraStats?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
}

export interface Gateway {
  readonly url: string;
  readonly server: Server;
  stats(): Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * @example
 * const gw = await gateway({ transport: pipeline, topics: { frames: Frame } });
 * console.log(`POST ${gw.url}/v1/topics/frames`);
 */
export async function gateway(options: GatewayOptions): Promise<Gateway> {
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  const maxConcurrent = options.maxConcurrent ?? 1024;
  const maxDepth = options.maxDepth ?? DEFAULT_DECODE_LIMITS.maxDepth;
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const bodyTimeout = options.bodyTimeoutMs ?? 30_000;
  const drainTimeout = options.drainTimeoutMs ?? 5_000;
  const publishTimeout = resolvePublishTimeout(options.publishTimeoutMs);
  const limits: ParseLimits = { maxDepth, cbor: cborCodec({ maxDepth, maxBytes: Math.max(maxBody, 1) }) };
  // Digests of equal length, so timingSafeEqual neither throws on nor leaks a length difference.
  const digest = (text: string) => createHash('sha256').update(text).digest();
  const expectedAuth = options.auth ? digest(`Bearer ${options.auth.token}`) : undefined;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const metrics = new Metrics();
  const source = options.transport;
  // An App has publish() too (typed), so tell a Transport by its declared features.
  let transport: Transport | undefined = 'features' in source ? source : undefined;
  let concurrent = 0;
  const registry = registryOf([...metrics.families(() => concurrent), ...(isApp(source) ? appFamilies(source.metricsSource()) : [])]);

  async function handlePost(req: IncomingMessage, res: ServerResponse, topic: string): Promise<void> {
    if (expectedAuth && !timingSafeEqual(digest(req.headers.authorization ?? ''), expectedAuth)) throw new HttpError(401, 'missing or wrong bearer token');
    if (!Object.hasOwn(options.topics, topic)) throw new HttpError(404, `no such topic: ${topic}`);
    const type = bodyType(req.headers['content-type']);
    const declared = Number(req.headers['content-length']);
    if (declared > maxBody) throw new HttpError(413, `body of ${declared} bytes is over the ${maxBody}-byte limit`);
    const body = await readBody(req, maxBody, bodyTimeout);
    const messages = parse(options.topics[topic] ?? null, type, body, limits);
    // A slot is taken only now: clients still trickling their bodies must not lock others out.
    if (concurrent >= maxConcurrent) {
      res.setHeader('retry-after', retryAfter);
      throw new HttpError(429, `${concurrent} requests are waiting for the broker; try again later`);
    }
    concurrent++;
    try {
      let status: 'confirmed' | 'spooled' = 'confirmed';
      if (!options.publish) transport ??= await (source as { transport(): Promise<Transport> }).transport();
      // With options.publish the engine is the app's business (it may not even be connected yet).
      const endSpan = publishSpan(transport?.kind ?? 'conveyor', topic, messages);
      try {
        // An app's publish (the spool) keeps its own deadline and turns a late confirm into 'spooled'.
        if (options.publish) status = await options.publish(topic, messages);
        else await withDeadline(transport!.publish(topic, messages), publishTimeout, topic);
        endSpan();
      } catch (error) {
        endSpan(error);
        if (isConveyorError(error) && !isRetryable(error)) throw new HttpError(400, error.message);
        res.setHeader('retry-after', retryAfter);
        throw new HttpError(503, `the broker did not confirm: ${(error as Error).message}`);
      }
      metrics.published(topic, messages.length);
      send(res, status === 'spooled' ? 202 : 201, status === 'spooled' ? { ids: messages.map((m) => m.id), status } : { ids: messages.map((m) => m.id) });
    } finally {
      concurrent--;
    }
  }

  const server = createServer(
    {
      headersTimeout: headersTimeout,
      // Node's whole-request bound, a backstop behind readBody's own body deadline.
      requestTimeout: headersTimeout + bodyTimeout + drainTimeout,
      // Node checks those timeouts only this often (30 s by default).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    (req, res) => {
    const started = performance.now();
    const url = req.url ?? '/';
    const done = (status: number) => metrics.request(status, (performance.now() - started) / 1000);
    let route: Promise<void>;
    if (req.method === 'POST' && url.startsWith('/v1/topics/')) {
      route = topicOf(url).then((topic) =>
        serverSpan(`POST /v1/topics/{topic}`, req.headers, { 'http.request.method': 'POST', 'http.route': '/v1/topics/{topic}' }, () =>
          handlePost(req, res, topic),
        ),
      );
    } else if (req.method === 'GET' && url === '/healthz') {
      route = Promise.resolve(send(res, 200, { status: 'ok' }));
    } else if (req.method === 'GET' && url === '/stats') {
      const consumers = isApp(source) ? { consumers: source.stats() } : {};
      route = Promise.resolve(options.extraStats?.()).then((extra) => send(res, 200, { ...metrics.snapshot(), concurrent, ...consumers, ...extra }));
    } else if (req.method === 'GET' && url === '/metrics') {
      route = registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
        res.end(text);
      });
    } else route = Promise.reject(new HttpError(404, `no route for ${req.method} ${url}`));
    route.then(
      () => done(res.statusCode),
      (error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        if (res.headersSent) res.destroy();
        else {
          // A slow client is not waited for; any other early answer drains the rest (below).
          if (status === 408) res.setHeader('connection', 'close');
          send(res, status, { error: (error as Error).message });
          if (!req.complete && status !== 408) drain(req, drainTimeout);
        }
        done(status);
      },
    );
    },
  );
  server.keepAliveTimeout = 5000;
  server.maxConnections = connectionLimit(options.maxConnections);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    server,
    stats: () => ({ ...metrics.snapshot(), concurrent }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function connectionLimit(value: number | undefined): number {
  if (value === undefined) return 10_000;
  if (Number.isSafeInteger(value) && value > 0) return value;
  throw new ConveyorError('ERR_BAD_OPTIONS', `gateway: maxConnections must be a positive integer, got ${JSON.stringify(value)}`, { details: { problems: ['maxConnections'] } });
}

/** The publish, or a retryable ERR_TIMEOUT once `ms` pass without its confirm. */
async function withDeadline(publish: Promise<void>, ms: number, topic: string): Promise<void> {
  if (ms === Number.POSITIVE_INFINITY) return publish;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ConveyorError('ERR_TIMEOUT', `not confirmed within ${ms} ms (publishTimeoutMs)`, { retryable: true, details: { topic, timeoutMs: ms } })),
      ms,
    );
  });
  // A confirm or failure after the deadline has no one left to answer.
  publish.catch(() => undefined);
  try {
    await Promise.race([publish, late]);
  } finally {
    clearTimeout(timer);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The topic from `/v1/topics/<topic>[?…]`, percent-decoded; a malformed escape is the client's error. */
async function topicOf(url: string): Promise<string> {
  const raw = url.slice('/v1/topics/'.length).split('?', 1)[0]!;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `malformed %-escape in topic ${JSON.stringify(raw)}`);
  }
}

/**
 * Reads and discards the rest of a body that was answered early, for up to `ms`, then closes.
 * Closing with unread bytes makes the kernel send a reset, which can destroy the answer before
 * the client has read it (issue 14: a 100 MB body got a reset instead of its 413 one time in three).
 */
function drain(req: IncomingMessage, ms: number): void {
  req.resume();
  const timer = setTimeout(() => req.socket.destroy(), ms);
  timer.unref();
  const clear = () => clearTimeout(timer);
  req.once('end', clear);
  req.socket.once('close', clear);
}
