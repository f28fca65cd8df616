/**
 * HTTP ingestion: `POST /v1/topics/:topic` with a JSON or CBOR body (one message) or NDJSON (one
 * per line). Everything in a request is validated first, then published in one transport call,
 * and the answer (`201 {"ids": [...]}`) goes out only after the broker confirmed — so a request
 * is all or nothing: a 400 publishes nothing, a 503 means nothing was confirmed and the client
 * may send the whole request again.
 *
 * | status | when |
 * |---|---|
 * | 400 | bad JSON/CBOR/NDJSON or a schema violation (the reason, and the line for NDJSON) |
 * | 401 | `auth.token` set and the bearer token is missing or wrong |
 * | 404 | a topic the gateway does not serve |
 * | 413 | body over `maxBodyBytes` — refused from Content-Length before reading, or cut off when streaming |
 * | 429 | more than `maxConcurrent` requests waiting for confirms (Retry-After) |
 * | 503 | the broker did not confirm (down, closed): Retry-After |
 *
 * Also `GET /healthz`, `GET /stats` (JSON) and `GET /metrics` (Prometheus text format).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { codecs } from '../core/codecs/index.ts';
import { isConveyorError, isRetryable } from '../core/errors.ts';
import { newId } from '../core/id.ts';
import { HEADER, type OutgoingMessage } from '../core/message.ts';
import type { MessageDefinition } from '../core/schema.ts';
import type { Transport } from '../core/transport.ts';
import { consumerPrometheus, hasConsumerStats } from './consumer-metrics.ts';
import { Metrics } from './metrics.ts';

export interface GatewayOptions {
  /** Where messages go: a transport, or anything with `transport()` (an App). */
  transport: Transport | { transport(): Promise<Transport> };
  /** Topics served; with a definition, bodies are validated and encoded with it, else passed as they came. */
  topics: Record<string, MessageDefinition<any> | null>;
  /** @default 0 (any free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Largest request body, bytes. @default 1048576 */
  maxBodyBytes?: number;
  /** Requests waiting for confirms at once before 429. @default 1024 */
  maxConcurrent?: number;
  /** Require `Authorization: Bearer <token>` on POSTs. */
  auth?: { token: string };
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

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * @example
 * const gw = await gateway({ transport: pipeline, topics: { frames: Frame } });
 * console.log(`POST ${gw.url}/v1/topics/frames`);
 */
export async function gateway(options: GatewayOptions): Promise<Gateway> {
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  const maxConcurrent = options.maxConcurrent ?? 1024;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const metrics = new Metrics();
  const source = options.transport;
  // An App has publish() too (typed), so tell a Transport by its declared features.
  let transport: Transport | undefined = 'features' in source ? source : undefined;
  let concurrent = 0;

  async function handlePost(req: IncomingMessage, res: ServerResponse, topic: string): Promise<void> {
    if (options.auth && req.headers.authorization !== `Bearer ${options.auth.token}`) throw new HttpError(401, 'missing or wrong bearer token');
    if (!Object.hasOwn(options.topics, topic)) throw new HttpError(404, `no such topic: ${topic}`);
    const declared = Number(req.headers['content-length']);
    if (declared > maxBody) {
      // Refuse before reading; close so the client stops sending.
      res.setHeader('connection', 'close');
      throw new HttpError(413, `body of ${declared} bytes is over the ${maxBody}-byte limit`);
    }
    if (concurrent >= maxConcurrent) {
      res.setHeader('retry-after', retryAfter);
      throw new HttpError(429, `${concurrent} requests are waiting for the broker; try again later`);
    }
    concurrent++;
    try {
      const body = await readBody(req, maxBody, res);
      const messages = parse(options.topics[topic] ?? null, String(req.headers['content-type'] ?? 'application/json'), body);
      transport ??= await (source as { transport(): Promise<Transport> }).transport();
      try {
        await transport.publish(topic, messages);
      } catch (error) {
        if (isConveyorError(error) && !isRetryable(error)) throw new HttpError(400, error.message);
        res.setHeader('retry-after', retryAfter);
        throw new HttpError(503, `the broker did not confirm: ${(error as Error).message}`);
      }
      metrics.published(topic, messages.length);
      send(res, 201, { ids: messages.map((m) => m.id) });
    } finally {
      concurrent--;
    }
  }

  const server = createServer((req, res) => {
    const started = performance.now();
    const url = req.url ?? '/';
    const done = (status: number) => metrics.request(status, (performance.now() - started) / 1000);
    let route: Promise<void>;
    if (req.method === 'POST' && url.startsWith('/v1/topics/')) {
      route = handlePost(req, res, decodeURIComponent(url.slice('/v1/topics/'.length).split('?', 1)[0]!));
    } else if (req.method === 'GET' && url === '/healthz') {
      route = Promise.resolve(send(res, 200, { status: 'ok' }));
    } else if (req.method === 'GET' && url === '/stats') {
      const consumers = hasConsumerStats(source) ? { consumers: source.stats() } : {};
      route = Promise.resolve(options.extraStats?.()).then((extra) => send(res, 200, { ...metrics.snapshot(), concurrent, ...consumers, ...extra }));
    } else if (req.method === 'GET' && url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(metrics.prometheus(concurrent) + (hasConsumerStats(source) ? consumerPrometheus(source.stats()) : ''));
      route = Promise.resolve();
    } else route = Promise.reject(new HttpError(404, `no route for ${req.method} ${url}`));
    route.then(
      () => done(res.statusCode),
      (error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        if (!res.headersSent) send(res, status, { error: (error as Error).message });
        else res.destroy();
        done(status);
      },
    );
  });
  server.keepAliveTimeout = 5000;
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

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Reads the body, counting bytes as they come: past the limit it answers 413 and stops reading. */
function readBody(req: IncomingMessage, max: number, res: ServerResponse): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        res.setHeader('connection', 'close');
        reject(new HttpError(413, `body is over the ${max}-byte limit`));
        req.pause();
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

/** Body → messages: every value validated and encoded before anything is published. */
function parse(definition: MessageDefinition<unknown> | null, contentType: string, body: Buffer): OutgoingMessage[] {
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  let values: unknown[];
  if (type === 'application/x-ndjson' || type === 'application/ndjson') {
    values = [];
    let line = 0;
    let start = 0;
    while (start < body.length) {
      let end = body.indexOf(10, start);
      if (end === -1) end = body.length;
      line++;
      const text = body.toString('utf8', start, end).trim();
      start = end + 1;
      if (text === '') continue;
      try {
        values.push(JSON.parse(text));
      } catch (e) {
        throw new HttpError(400, `line ${line}: malformed JSON: ${(e as Error).message}`);
      }
    }
    if (values.length === 0) throw new HttpError(400, 'empty NDJSON body');
    return encodeAll(definition, values, (i) => `line ${i + 1}: `);
  }
  if (type === 'application/cbor') {
    try {
      values = [codecs.cbor.decode(body)];
    } catch (e) {
      throw new HttpError(400, `malformed CBOR: ${(e as Error).message}`);
    }
  } else if (type === 'application/json') {
    try {
      values = [JSON.parse(body.toString('utf8'))];
    } catch (e) {
      throw new HttpError(400, `malformed JSON: ${(e as Error).message}`);
    }
  } else throw new HttpError(400, `unsupported content-type ${JSON.stringify(contentType)}: use application/json, application/cbor or application/x-ndjson`);
  return encodeAll(definition, values, () => '');
}

function encodeAll(definition: MessageDefinition<unknown> | null, values: unknown[], where: (i: number) => string): OutgoingMessage[] {
  return values.map((value, i) => {
    const id = newId();
    if (!definition) {
      return { id, body: codecs.json.encode(value), headers: { [HEADER.contentType]: 'application/json', [HEADER.id]: id } };
    }
    try {
      const { body, headers } = definition.encode(definition.validate(value));
      headers[HEADER.id] = id;
      return { id, body, headers };
    } catch (e) {
      throw new HttpError(400, `${where(i)}${(e as Error).message}`);
    }
  });
}
