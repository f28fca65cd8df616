/**
 * Protocol V2 commands, one function per command, with nsqd's checks in nsqd's order and its
 * error codes (nsqd/protocol_v2.go). Each returns the frame to send (undefined for none, a
 * promise when the answer waits for durability) or throws a ClientError: fatal ones close the
 * connection after the error frame.
 */
import { bodyCopy, bodyView } from '../bodies.ts';
import { isConveyorError } from '../../core/errors.ts';
import type { ConsumerSink, EngineInput, ServerEngine } from '../engine.ts';
import { isValidName } from '../../engine/names.ts';
import { type ProtocolLimits, SERVER_VERSION } from '../options.ts';
import { type ClientState, STATE_CLOSING, STATE_INIT, STATE_SUBSCRIBED } from './client.ts';
import { type AuthState, type BrokerAuthOptions, isAllowed, queryAuth } from './auth.ts';
import { type ClientError, fatal, nonFatal } from './errors.ts';
import { CLOSE_WAIT_FRAME, encodeFrame, FRAME_RESPONSE, OK_FRAME } from './frames.ts';
import { parseBase10 } from './parse.ts';
import type { TlsSettings } from './tls.ts';

/** What the broker was started with for TLS and AUTH (both optional, as on nsqd). */
export interface Security {
  readonly tls: TlsSettings | undefined;
  readonly auth: Required<BrokerAuthOptions> | undefined;
  /** Where what the client is not told goes (an auth server's failure), as nsqd logs it. */
  readonly log?: ((line: string) => void) | undefined;
}

export type Reply = Buffer | Promise<Buffer> | undefined;

/** What a command may touch besides the client's state. */
export interface CommandHost {
  readonly client: ClientState;
  readonly engine: ServerEngine;
  readonly limits: ProtocolLimits;
  /** Where the channel pushes this client's messages (the connection). */
  readonly sink: ConsumerSink;
  readonly security: Security;
  /** IDENTIFY changed the heartbeat interval: re-arm heartbeats and the read deadline. */
  identified(): void;
  /** Sends `answer` in the clear, upgrades the socket to TLS, resolves with the first frame to send over it. */
  upgradeTls(answer: Buffer): Promise<Buffer>;
  /** The client's address and TLS state, for the auth server. */
  remoteIp(): string;
}

/** nsqd's enforceTLSPolicy: with --tls-required, only IDENTIFY before the upgrade. */
export function enforceTls(host: CommandHost, name: string): void {
  if (host.security.tls?.required && !host.client.tls) {
    throw fatal('E_INVALID', `cannot ${name} in current state (TLS required)`);
  }
}

const MSG_ID_LENGTH = 16;

/**
 * Checks made on the command line alone, before its body has arrived, so that a bad topic or
 * an oversized length is answered at once, as nsqd (which reads the body only after them) does.
 * Returns the largest body size the command accepts.
 */
export function checkBeforeBody(host: CommandHost, params: string[]): number {
  const name = params[0]!;
  if (name !== 'IDENTIFY') enforceTls(host, name);
  switch (name) {
    case 'PUB':
    case 'MPUB':
      if (params.length < 2) throw fatal('E_INVALID', `${name} insufficient number of parameters`);
      requireTopic(params[1]!, name);
      return name === 'PUB' ? host.limits.maxMsgSize : host.limits.maxBodySize;
    case 'DPUB':
      if (params.length < 3) throw fatal('E_INVALID', 'DPUB insufficient number of parameters');
      requireTopic(params[1]!, name);
      dpubDelay(host, params[2]!);
      return host.limits.maxMsgSize;
    case 'IDENTIFY':
      if (host.client.state !== STATE_INIT) throw fatal('E_INVALID', 'cannot IDENTIFY in current state');
      return host.limits.maxBodySize;
    default: // AUTH
      if (host.client.state !== STATE_INIT) throw fatal('E_INVALID', 'cannot AUTH in current state');
      if (params.length !== 1) throw fatal('E_INVALID', 'AUTH invalid number of parameters');
      return host.limits.maxBodySize;
  }
}

/** nsqd's answer to a body length: PUB/DPUB bodies are messages (E_BAD_MESSAGE), the rest E_BAD_BODY. */
export function checkBodyLength(name: string, length: number, max: number): void {
  const single = name === 'PUB' || name === 'DPUB';
  const code = single ? 'E_BAD_MESSAGE' : 'E_BAD_BODY';
  if (length <= 0) throw fatal(code, `${name} invalid ${single ? 'message body' : 'body'} size ${length}`);
  if (length > max) throw fatal(code, `${name} ${single ? 'message' : 'body'} too big ${length} > ${max}`);
}

export function IDENTIFY(host: CommandHost, body: Buffer): Reply {
  let data: unknown;
  try {
    data = JSON.parse(body.toString('utf8'));
  } catch {
    throw fatal('E_BAD_BODY', 'IDENTIFY failed to decode JSON body');
  }
  if (data !== null && (typeof data !== 'object' || Array.isArray(data))) {
    throw fatal('E_BAD_BODY', 'IDENTIFY failed to decode JSON body');
  }
  const fields = (data ?? {}) as Record<string, unknown>;
  const { client, limits } = host;
  const str = (key: string): string | undefined => {
    const v = fields[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw fatal('E_BAD_BODY', `IDENTIFY failed to decode JSON body (${key})`);
    return v;
  };
  const int = (key: string): number => {
    const v = fields[key];
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      throw fatal('E_BAD_BODY', `IDENTIFY failed to decode JSON body (${key})`);
    }
    return v;
  };
  const bool = (key: string): boolean => {
    const v = fields[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw fatal('E_BAD_BODY', `IDENTIFY failed to decode JSON body (${key})`);
    return v;
  };

  // Validate everything before changing anything (client_v2.go Identify's setters, in order).
  const heartbeat = int('heartbeat_interval');
  if (!(heartbeat === -1 || heartbeat === 0 || (heartbeat >= 1000 && heartbeat <= limits.maxHeartbeatIntervalMs))) {
    throw fatal('E_BAD_BODY', `IDENTIFY heartbeat interval (${heartbeat}) is invalid`);
  }
  const bufferSize = int('output_buffer_size');
  if (!(bufferSize === -1 || bufferSize === 0 || (bufferSize >= 64 && bufferSize <= limits.maxOutputBufferSize))) {
    throw fatal('E_BAD_BODY', `IDENTIFY output buffer size (${bufferSize}) is invalid`);
  }
  const bufferTimeout = int('output_buffer_timeout');
  if (
    !(bufferTimeout === -1 || bufferTimeout === 0 || (bufferTimeout >= 1 && bufferTimeout <= limits.maxOutputBufferTimeoutMs))
  ) {
    throw fatal('E_BAD_BODY', `IDENTIFY output buffer timeout (${bufferTimeout}) is invalid`);
  }
  const sampleRate = int('sample_rate');
  if (sampleRate < 0 || sampleRate > 99) throw fatal('E_BAD_BODY', `IDENTIFY sample rate (${sampleRate}) is invalid`);
  const msgTimeout = int('msg_timeout');
  if (!(msgTimeout === 0 || (msgTimeout >= 1000 && msgTimeout <= limits.maxMsgTimeoutMs))) {
    throw fatal('E_BAD_BODY', `IDENTIFY msg timeout (${msgTimeout}) is invalid`);
  }
  const clientId = str('client_id') || str('short_id');
  const hostname = str('hostname') || str('long_id');
  const userAgent = str('user_agent');
  const negotiate = bool('feature_negotiation');
  // Snappy and deflate are asked for but never granted: the answer says false and the client
  // carries on uncompressed, as with an nsqd started without them. TLS when the broker has a cert.
  const wantsTls = bool('tls_v1');
  for (const key of ['snappy', 'deflate']) bool(key);
  int('deflate_level');

  if (clientId) client.clientId = clientId;
  if (hostname) client.hostname = hostname;
  if (userAgent !== undefined) client.userAgent = userAgent;
  if (heartbeat === -1) client.heartbeatIntervalMs = 0;
  else if (heartbeat > 0) client.heartbeatIntervalMs = heartbeat;
  if (bufferSize === -1) client.outputBufferSize = 1;
  else if (bufferSize > 0) client.outputBufferSize = bufferSize;
  if (bufferTimeout === -1) client.outputBufferTimeoutMs = 0;
  else if (bufferTimeout > 0) client.outputBufferTimeoutMs = bufferTimeout;
  client.sampleRate = sampleRate;
  if (msgTimeout > 0) client.msgTimeoutMs = msgTimeout;
  host.identified();

  if (!negotiate) return OK_FRAME;
  const tls = wantsTls && host.security.tls !== undefined && !client.tls;
  const answer = encodeFrame(
    FRAME_RESPONSE,
    JSON.stringify({
      max_rdy_count: limits.maxRdyCount,
      version: SERVER_VERSION,
      max_msg_timeout: limits.maxMsgTimeoutMs,
      msg_timeout: client.msgTimeoutMs,
      tls_v1: tls,
      deflate: false,
      deflate_level: 0,
      max_deflate_level: 6,
      snappy: false,
      sample_rate: client.sampleRate,
      auth_required: host.security.auth !== undefined,
      output_buffer_size: client.outputBufferSize,
      output_buffer_timeout: client.outputBufferTimeoutMs,
    }),
  );
  return tls ? host.upgradeTls(answer) : answer;
}

/** AUTH <secret body>: asks the auth server, answers {identity, identity_url, permission_count}. */
export function AUTH(host: CommandHost, body: Buffer): Reply {
  const { client } = host;
  if (client.auth && client.auth.authorizations.length > 0) throw fatal('E_INVALID', 'AUTH already set');
  const auth = host.security.auth;
  if (!auth) throw fatal('E_AUTH_DISABLED', 'AUTH disabled');
  client.authSecret = body.toString('utf8');
  return refreshAuth(host).then((state) => {
    if (state.authorizations.length === 0) throw fatal('E_UNAUTHORIZED', 'AUTH no authorizations found');
    return encodeFrame(
      FRAME_RESPONSE,
      JSON.stringify({ identity: state.identity, identity_url: state.identityUrl, permission_count: state.authorizations.length }),
    );
  });
}

/** Asks the auth server for the client's secret; its failure is logged, the client hears only "AUTH failed". */
function refreshAuth(host: CommandHost): Promise<AuthState> {
  const { client } = host;
  return queryAuth(host.security.auth!, {
    remoteIp: host.remoteIp(),
    tls: client.tls,
    commonName: client.tlsCommonName,
    secret: client.authSecret ?? '',
  }).then(
    (state) => {
      client.auth = state;
      return state;
    },
    (err: unknown) => {
      host.security.log?.(`[${client.remoteAddress}] AUTH failed ${(err as Error).message}`);
      throw fatal('E_AUTH_FAILED', 'AUTH failed');
    },
  );
}

/**
 * nsqd's CheckAuth before SUB/PUB/MPUB/DPUB: runs `then` at once when allowed by a live auth
 * state, after asking the auth server again when it expired. A body the command needs must
 * already be copied out of the read buffer, since `then` may run later.
 */
function authorized(host: CommandHost, command: string, topic: string, channel: string, then: () => Buffer | Promise<Buffer>): Reply {
  if (!host.security.auth) return then();
  const state = host.client.auth;
  if (!state || state.authorizations.length === 0) throw fatal('E_AUTH_FIRST', `AUTH required before ${command}`);
  const check = (s: AuthState) => {
    if (!isAllowed(s, topic, channel)) {
      throw fatal('E_UNAUTHORIZED', `AUTH failed for ${command} on ${JSON.stringify(topic)} ${JSON.stringify(channel)}`);
    }
  };
  if (state.expires > Date.now()) {
    check(state);
    return then();
  }
  return refreshAuth(host).then((fresh) => {
    check(fresh);
    return then();
  });
}

export function SUB(host: CommandHost, params: string[]): Reply {
  const { client } = host;
  if (client.state !== STATE_INIT) throw fatal('E_INVALID', 'cannot SUB in current state');
  if (client.heartbeatIntervalMs <= 0) throw fatal('E_INVALID', 'cannot SUB with heartbeats disabled');
  if (params.length < 3) throw fatal('E_INVALID', 'SUB insufficient number of parameters');
  const topicName = params[1]!;
  if (!isValidName(topicName)) throw fatal('E_BAD_TOPIC', `SUB topic name ${JSON.stringify(topicName)} is not valid`);
  const channelName = params[2]!;
  if (!isValidName(channelName)) {
    throw fatal('E_BAD_CHANNEL', `SUB channel name ${JSON.stringify(channelName)} is not valid`);
  }
  return authorized(host, 'SUB', topicName, channelName, () => {
    // Asked again: the auth server may have answered after the client went away or re-subscribed.
    if (client.state !== STATE_INIT) throw fatal('E_INVALID', 'cannot SUB in current state');
    const channel = host.engine.topic(topicName).channel(channelName);
    client.consumer = channel.subscribe(host.sink, { msgTimeoutMs: client.msgTimeoutMs });
    client.topicName = topicName;
    client.channelName = channelName;
    client.state = STATE_SUBSCRIBED;
    return OK_FRAME;
  });
}

export function RDY(host: CommandHost, params: string[]): Reply {
  const { client } = host;
  // RDY after CLS is ignored, not an error: the client may still be draining.
  if (client.state === STATE_CLOSING) return undefined;
  if (client.state !== STATE_SUBSCRIBED) throw fatal('E_INVALID', 'cannot RDY in current state');
  let count = 1;
  if (params.length > 1) {
    const parsed = parseBase10(params[1]!);
    if (parsed === undefined) throw fatal('E_INVALID', `RDY could not parse count ${params[1]}`);
    count = parsed;
  }
  // Fatal, as nsqd: otherwise client and server would disagree about the client's RDY.
  if (count > host.limits.maxRdyCount) {
    throw fatal('E_INVALID', `RDY count ${count} out of range 0-${host.limits.maxRdyCount}`);
  }
  client.readyCount = count;
  client.consumer!.setReady(count);
  return undefined;
}

export function FIN(host: CommandHost, params: string[]): Reply {
  const { client } = host;
  if (client.state !== STATE_SUBSCRIBED && client.state !== STATE_CLOSING) {
    throw fatal('E_INVALID', 'cannot FIN in current state');
  }
  if (params.length < 2) throw fatal('E_INVALID', 'FIN insufficient number of params');
  return finish(host, params[1]!);
}

/** FIN once the id is in hand; the connection's fast path calls it directly. */
export function finish(host: CommandHost, id: string): Reply {
  const { client } = host;
  if (client.state !== STATE_SUBSCRIBED && client.state !== STATE_CLOSING) {
    throw fatal('E_INVALID', 'cannot FIN in current state');
  }
  if (id.length !== MSG_ID_LENGTH) throw fatal('E_INVALID', 'Invalid Message ID');
  if (!client.consumer!.finish(id)) throw nonFatal('E_FIN_FAILED', `FIN ${id} failed ID not in flight`);
  client.finishCount++;
  return undefined;
}

/**
 * The connection's fast path for "FIN <id>\n", with the id as the 16 bytes at bytes[at]: looked
 * up without a string; anything but a plain success takes finish() for its checks and errors.
 */
export function finishAt(host: CommandHost, bytes: Buffer, at: number): Reply {
  const { client } = host;
  if (client.state === STATE_SUBSCRIBED || client.state === STATE_CLOSING) {
    if (client.consumer?.finishBytes?.(bytes, at)) {
      client.finishCount++;
      return undefined;
    }
  }
  return finish(host, bytes.toString('latin1', at, at + MSG_ID_LENGTH));
}

export function REQ(host: CommandHost, params: string[]): Reply {
  const { client, limits } = host;
  if (client.state !== STATE_SUBSCRIBED && client.state !== STATE_CLOSING) {
    throw fatal('E_INVALID', 'cannot REQ in current state');
  }
  if (params.length < 3) throw fatal('E_INVALID', 'REQ insufficient number of params');
  const id = params[1]!;
  if (id.length !== MSG_ID_LENGTH) throw fatal('E_INVALID', 'Invalid Message ID');
  const parsed = parseBase10(params[2]!);
  if (parsed === undefined) throw fatal('E_INVALID', `REQ could not parse timeout ${params[2]}`);
  // nsqd ≥ 1.0 clamps an out-of-range REQ delay instead of failing (DPUB's stays fatal).
  const delay = Math.min(parsed, limits.maxReqTimeoutMs);
  if (!client.consumer!.requeue(id, delay)) throw nonFatal('E_REQ_FAILED', `REQ ${id} failed ID not in flight`);
  client.requeueCount++;
  return undefined;
}

export function TOUCH(host: CommandHost, params: string[]): Reply {
  const { client } = host;
  if (client.state !== STATE_SUBSCRIBED && client.state !== STATE_CLOSING) {
    throw fatal('E_INVALID', 'cannot TOUCH in current state');
  }
  if (params.length < 2) throw fatal('E_INVALID', 'TOUCH insufficient number of params');
  const id = params[1]!;
  if (id.length !== MSG_ID_LENGTH) throw fatal('E_INVALID', 'Invalid Message ID');
  if (!client.consumer!.touch(id)) throw nonFatal('E_TOUCH_FAILED', `TOUCH ${id} failed ID not in flight`);
  return undefined;
}

export function CLS(host: CommandHost, _params: string[]): Reply {
  const { client } = host;
  if (client.state !== STATE_SUBSCRIBED) throw fatal('E_INVALID', 'cannot CLS in current state');
  client.readyCount = 0;
  client.consumer!.setReady(0);
  client.state = STATE_CLOSING;
  return CLOSE_WAIT_FRAME;
}

export function NOP(_host: CommandHost, _params: string[]): Reply {
  return undefined;
}

export function PUB(host: CommandHost, params: string[], body: Buffer): Reply {
  const inputs = [{ body: bodyCopy(body) }];
  return authorized(host, 'PUB', params[1]!, '', () => publish(host, 'PUB', params[1]!, inputs, 'E_PUB_FAILED'));
}

export function DPUB(host: CommandHost, params: string[], body: Buffer): Reply {
  const delayMs = dpubDelay(host, params[2]!);
  const inputs = [{ body: bodyCopy(body), delayMs }];
  return authorized(host, 'DPUB', params[1]!, '', () => publish(host, 'DPUB', params[1]!, inputs, 'E_DPUB_FAILED'));
}

/**
 * MPUB body: [count i32] then count × [size i32][size bytes]. The body was bounded by
 * maxBodySize before it was read; each declared size is checked against the limit and against
 * the bytes present before it is used, and the messages must fill the body exactly.
 */
export function MPUB(host: CommandHost, params: string[], body: Buffer): Reply {
  const { maxMsgSize, maxBodySize } = host.limits;
  if (body.length < 4) throw fatal('E_BAD_BODY', 'MPUB failed to read message count');
  const count = body.readInt32BE(0);
  if (count <= 0 || count > maxBodySize / 4) throw fatal('E_BAD_BODY', `MPUB invalid message count ${count}`);
  // One copy of the whole batch; each message is a view of it, so a batch costs one allocation.
  const block = copy(body);
  const inputs: EngineInput[] = new Array(count);
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 4 > block.length) throw fatal('E_BAD_MESSAGE', `MPUB failed to read message(${i}) body size`);
    const size = block.readInt32BE(at);
    if (size <= 0) throw fatal('E_BAD_MESSAGE', `MPUB invalid message(${i}) body size ${size}`);
    if (size > maxMsgSize) throw fatal('E_BAD_MESSAGE', `MPUB message too big ${size} > ${maxMsgSize}`);
    at += 4;
    if (at + size > block.length) throw fatal('E_BAD_MESSAGE', 'MPUB failed to read message body');
    inputs[i] = { body: bodyView(block, at, at + size) };
    at += size;
  }
  if (at !== block.length) throw fatal('E_BAD_BODY', `MPUB body has ${block.length - at} bytes after message ${count}`);
  return authorized(host, 'MPUB', params[1]!, '', () => publish(host, 'MPUB', params[1]!, inputs, 'E_MPUB_FAILED'));
}

function publish(
  host: CommandHost,
  command: string,
  topicName: string,
  inputs: EngineInput[],
  failure: 'E_PUB_FAILED' | 'E_MPUB_FAILED' | 'E_DPUB_FAILED',
): Promise<Buffer> {
  let synced: Promise<void>;
  try {
    const topic = host.engine.topic(topicName);
    topic.publish(inputs);
    synced = topic.sync();
  } catch (err) {
    throw publishFailed(command, failure, err);
  }
  host.client.countPublished(topicName, inputs.length);
  return synced.then(
    () => OK_FRAME,
    (err) => {
      throw publishFailed(command, failure, err);
    },
  );
}

function publishFailed(command: string, code: 'E_PUB_FAILED' | 'E_MPUB_FAILED' | 'E_DPUB_FAILED', err: unknown): ClientError {
  const why = isConveyorError(err) || err instanceof Error ? err.message : String(err);
  return fatal(code, `${command} failed ${why}`);
}

function requireTopic(name: string, command: string): void {
  if (!isValidName(name)) throw fatal('E_BAD_TOPIC', `${command} topic name ${JSON.stringify(name)} is not valid`);
}

function dpubDelay(host: CommandHost, text: string): number {
  const delay = parseBase10(text);
  if (delay === undefined) throw fatal('E_INVALID', `DPUB could not parse timeout ${text}`);
  if (delay > host.limits.maxReqTimeoutMs) {
    throw fatal('E_INVALID', `DPUB timeout ${delay} out of range 0-${host.limits.maxReqTimeoutMs}`);
  }
  return delay;
}

/** Bodies outlive the read buffer they arrived in, which is reused: copy them out. */
function copy(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  bytes.copy(out, 0, 0, bytes.length);
  return out;
}
