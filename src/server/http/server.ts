/**
 * nsqd's HTTP API (nsqd/http.go) on node:http: /ping, /info, /pub, /mpub, /stats and the
 * topic/channel admin endpoints, with nsqd's methods, status codes and `{"message": CODE}`
 * error bodies. Bodies are bounded before they are read: a declared Content-Length over the
 * limit is refused at once, and a body that grows past it is cut off.
 */
import { bodyView } from '../bodies.ts';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { isConveyorError } from '../../core/errors.ts';
import type { EngineInput, ServerEngine, ServerTopic } from '../engine.ts';
import { isValidName } from '../../engine/names.ts';
import { type ProtocolLimits, SERVER_VERSION } from '../options.ts';
import type { ClientState } from '../tcp/client.ts';
import { brokerFamilies, PROMETHEUS_CONTENT_TYPE, registryOf } from '../../observability/metrics.ts';
import { collectStats, formatStats } from './stats.ts';

/** An nsqd HTTP error: status and the code in `{"message": ...}`. */
class HttpError extends Error {
  readonly status: number;
  constructor(status: number, code: string) {
    super(code);
    this.status = status;
  }
}

export interface HttpContext {
  readonly engine: ServerEngine;
  readonly limits: ProtocolLimits;
  readonly startTime: number;
  /** The TCP clients, for /stats. */
  clients(): Iterable<ClientState>;
  /** host:port of the TCP listener, for /info. */
  tcpAddress(): string;
  httpAddress(): string;
  /** Handlers mounted beside nsqd's API (the dashboard), asked first; each owns a path prefix. */
  mounts?: readonly MountedHandler[];
}

/** A request handler that takes the requests under its own prefix (`owns`). */
export interface MountedHandler {
  owns(url: string): boolean;
  (req: IncomingMessage, res: ServerResponse): void;
}

type Handler = (req: IncomingMessage, query: URLSearchParams, ctx: HttpContext) => Promise<unknown> | unknown;

const BOOL: Record<string, boolean> = { true: true, '1': true, false: false, '0': false };

const ROUTES: Record<string, { method: string; handler: Handler; text?: boolean }> = {
  '/ping': { method: 'GET', handler: () => 'OK', text: true },
  '/info': { method: 'GET', handler: info },
  '/pub': { method: 'POST', handler: pub },
  '/mpub': { method: 'POST', handler: mpub },
  '/stats': { method: 'GET', handler: stats },
  '/topic/create': { method: 'POST', handler: (_r, q, ctx) => void topicFromQuery(q, ctx) },
  '/topic/delete': { method: 'POST', handler: topicDelete },
  '/topic/empty': { method: 'POST', handler: topicEmpty },
  '/topic/pause': { method: 'POST', handler: (_r, q, ctx) => void existingTopic(q, ctx, false).pause() },
  '/topic/unpause': { method: 'POST', handler: (_r, q, ctx) => void existingTopic(q, ctx, false).unpause() },
  '/channel/create': {
    method: 'POST',
    handler: (_r, q, ctx) => {
      const [topic, channel] = topicAndChannel(q, ctx);
      topic.channel(channel);
    },
  },
  '/channel/delete': { method: 'POST', handler: channelDelete },
  '/channel/empty': { method: 'POST', handler: async (_r, q, ctx) => void (await existingChannel(q, ctx).empty()) },
  '/channel/pause': { method: 'POST', handler: (_r, q, ctx) => void existingChannel(q, ctx).pause() },
  '/channel/unpause': { method: 'POST', handler: (_r, q, ctx) => void existingChannel(q, ctx).unpause() },
};

export function createHttpServer(ctx: HttpContext): Server {
  const topics = () => {
    const s = ctx.engine.stats();
    return Array.isArray(s) ? s : s.topics;
  };
  const registry = registryOf(brokerFamilies(topics, () => [...ctx.clients()].length));
  return createServer((req, res) => {
    const mounted = ctx.mounts?.find((m) => m.owns(req.url ?? '/'));
    if (mounted) return mounted(req, res);
    // Prometheus' text format, not nsqd's JSON: served beside the nsqd routes.
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
          res.end(text);
        },
        (err: unknown) => respondError(res, err),
      );
      return;
    }
    handle(req, res, ctx).catch((err) => respondError(res, err));
  });
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const route = ROUTES[url.pathname];
  if (!route) throw new HttpError(404, 'NOT_FOUND');
  // nsqd's router answers HEAD for GET routes too.
  if (req.method !== route.method && !(route.method === 'GET' && req.method === 'HEAD')) {
    throw new HttpError(405, 'METHOD_NOT_ALLOWED');
  }
  const data = await route.handler(req, url.searchParams, ctx);
  respond(res, 200, data, route.text === true);
}

function respond(res: ServerResponse, status: number, data: unknown, text: boolean): void {
  let body: string;
  if (typeof data === 'string') {
    body = data;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  } else if (data === undefined) {
    body = '';
  } else {
    body = JSON.stringify(data);
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
  }
  if (!text) res.setHeader('X-NSQ-Content-Type', 'nsq; version=1.0');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.writeHead(status);
  res.end(body);
}

function respondError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = err instanceof HttpError ? err.status : 500;
  const code = err instanceof HttpError ? err.message : 'INTERNAL_ERROR';
  // A refused body may still be on its way: close rather than read it to keep the connection.
  if (status === 413) res.setHeader('Connection', 'close');
  respond(res, status, { message: code }, false);
}

function info(_req: IncomingMessage, _q: URLSearchParams, ctx: HttpContext): unknown {
  const port = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
  const { limits } = ctx;
  return {
    version: SERVER_VERSION,
    broadcast_address: hostname(),
    hostname: hostname(),
    http_port: port(ctx.httpAddress()),
    tcp_port: port(ctx.tcpAddress()),
    start_time: Math.floor(ctx.startTime / 1000),
    // nsqd marshals these time.Durations as nanoseconds.
    max_heartbeat_interval: limits.maxHeartbeatIntervalMs * 1e6,
    max_output_buffer_size: limits.maxOutputBufferSize,
    max_output_buffer_timeout: limits.maxOutputBufferTimeoutMs * 1e6,
    max_deflate_level: 6,
  };
}

async function pub(req: IncomingMessage, query: URLSearchParams, ctx: HttpContext): Promise<string> {
  const { maxMsgSize, maxReqTimeoutMs } = ctx.limits;
  const body = await readBody(req, maxMsgSize, 'MSG_TOO_BIG');
  if (body.length === 0) throw new HttpError(400, 'MSG_EMPTY');
  const topic = topicFromQuery(query, ctx);
  const input: EngineInput = { body: bodyView(body, 0, body.length) };
  const deferText = query.get('defer');
  if (deferText !== null) {
    const delay = /^-?\d+$/.test(deferText) ? Number(deferText) : Number.NaN;
    if (!Number.isSafeInteger(delay) || delay < 0 || delay > maxReqTimeoutMs) throw new HttpError(400, 'INVALID_DEFER');
    input.delayMs = delay;
  }
  await publish(topic, [input]);
  return 'OK';
}

/**
 * /mpub: newline-separated messages (empty lines skipped, as nsqd), or with binary=true
 * [count u32] then count × [size u32][body] — the TCP MPUB body.
 */
async function mpub(req: IncomingMessage, query: URLSearchParams, ctx: HttpContext): Promise<string> {
  const { maxMsgSize, maxBodySize } = ctx.limits;
  const length = Number(req.headers['content-length'] ?? Number.NaN);
  if (length > maxBodySize) throw new HttpError(413, 'BODY_TOO_BIG');
  const topic = topicFromQuery(query, ctx);
  const binaryParam = query.get('binary');
  // nsqd treats any value it does not know as true (and warns that it is deprecated).
  const binary = binaryParam !== null && (BOOL[binaryParam] ?? true);
  const body = await readBody(req, maxBodySize, 'BODY_TOO_BIG');
  const inputs: EngineInput[] = [];
  if (binary) {
    // nsqd answers every binary body error with 413 and the code without its "E_".
    if (body.length < 4) throw new HttpError(413, 'BAD_BODY');
    const count = body.readInt32BE(0);
    if (count <= 0 || count > maxBodySize / 4) throw new HttpError(413, 'BAD_BODY');
    let at = 4;
    for (let i = 0; i < count; i++) {
      if (at + 4 > body.length) throw new HttpError(413, 'BAD_MESSAGE');
      const size = body.readInt32BE(at);
      if (size <= 0 || size > maxMsgSize) throw new HttpError(413, 'BAD_MESSAGE');
      at += 4;
      if (at + size > body.length) throw new HttpError(413, 'BAD_MESSAGE');
      inputs.push({ body: bodyView(body, at, at + size) });
      at += size;
    }
  } else {
    let from = 0;
    while (from <= body.length) {
      let nl = body.indexOf(10, from);
      if (nl < 0) nl = body.length;
      if (nl > from) {
        if (nl - from > maxMsgSize) throw new HttpError(413, 'MSG_TOO_BIG');
        inputs.push({ body: bodyView(body, from, nl) });
      }
      from = nl + 1;
    }
  }
  if (inputs.length > 0) await publish(topic, inputs);
  return 'OK';
}

async function publish(topic: ServerTopic, inputs: EngineInput[]): Promise<void> {
  try {
    topic.publish(inputs);
    await topic.sync();
  } catch (err) {
    if (isConveyorError(err) && err.code === 'ERR_CLOSED') throw new HttpError(503, 'EXITING');
    if (isConveyorError(err) && err.code === 'ERR_TOO_LARGE') throw new HttpError(413, 'MSG_TOO_BIG');
    throw err;
  }
}

function stats(_req: IncomingMessage, query: URLSearchParams, ctx: HttpContext): unknown {
  const flag = (name: string) => BOOL[query.get(name) ?? ''] ?? true;
  const result = collectStats(ctx.engine, ctx.clients(), ctx.startTime, {
    topic: query.get('topic') || undefined,
    channel: query.get('channel') || undefined,
    includeClients: flag('include_clients'),
    includeMem: flag('include_mem'),
  });
  return query.get('format') === 'json' ? result : formatStats(result, ctx.startTime);
}

async function topicDelete(_req: IncomingMessage, query: URLSearchParams, ctx: HttpContext): Promise<void> {
  const name = query.get('topic');
  if (name === null) throw new HttpError(400, 'MISSING_ARG_TOPIC');
  if (!ctx.engine.getTopic(name)) throw new HttpError(404, 'TOPIC_NOT_FOUND');
  await ctx.engine.deleteTopic(name);
}

async function topicEmpty(_req: IncomingMessage, query: URLSearchParams, ctx: HttpContext): Promise<void> {
  await existingTopic(query, ctx, true).empty();
}

async function channelDelete(_req: IncomingMessage, query: URLSearchParams, ctx: HttpContext): Promise<void> {
  const [topic, channel] = topicAndChannel(query, ctx);
  if (!topic.getChannel(channel)) throw new HttpError(404, 'CHANNEL_NOT_FOUND');
  await topic.deleteChannel(channel);
}

/** Get-or-create, as nsqd's getTopicFromQuery. */
function topicFromQuery(query: URLSearchParams, ctx: HttpContext): ServerTopic {
  const name = query.get('topic');
  if (name === null) throw new HttpError(400, 'MISSING_ARG_TOPIC');
  if (!isValidName(name)) throw new HttpError(400, 'INVALID_TOPIC');
  return ctx.engine.topic(name);
}

function existingTopic(query: URLSearchParams, ctx: HttpContext, checkName: boolean): ServerTopic {
  const name = query.get('topic');
  if (name === null) throw new HttpError(400, 'MISSING_ARG_TOPIC');
  if (checkName && !isValidName(name)) throw new HttpError(400, 'INVALID_TOPIC');
  const topic = ctx.engine.getTopic(name);
  if (!topic) throw new HttpError(404, 'TOPIC_NOT_FOUND');
  return topic;
}

/** nsqd's getExistingTopicFromQuery (http_api.GetTopicChannelArgs): both names valid, topic must exist. */
function topicAndChannel(query: URLSearchParams, ctx: HttpContext): [ServerTopic, string] {
  const topicName = query.get('topic');
  if (topicName === null) throw new HttpError(400, 'MISSING_ARG_TOPIC');
  if (!isValidName(topicName)) throw new HttpError(400, 'INVALID_ARG_TOPIC');
  const channelName = query.get('channel');
  if (channelName === null) throw new HttpError(400, 'MISSING_ARG_CHANNEL');
  if (!isValidName(channelName)) throw new HttpError(400, 'INVALID_ARG_CHANNEL');
  const topic = ctx.engine.getTopic(topicName);
  if (!topic) throw new HttpError(404, 'TOPIC_NOT_FOUND');
  return [topic, channelName];
}

function existingChannel(query: URLSearchParams, ctx: HttpContext) {
  const [topic, name] = topicAndChannel(query, ctx);
  const channel = topic.getChannel(name);
  if (!channel) throw new HttpError(404, 'CHANNEL_NOT_FOUND');
  return channel;
}

/**
 * Reads at most `max` bytes. A Content-Length over the limit is refused before reading; a body
 * without one is cut off as soon as it passes the limit, so memory stays bounded either way.
 */
function readBody(req: IncomingMessage, max: number, tooBig: string): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > max) return Promise.reject(new HttpError(413, tooBig));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.pause();
        reject(new HttpError(413, tooBig));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}
