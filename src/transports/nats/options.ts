import { ConveyorError } from '../../core/errors.ts';
import type { ParsedUrl } from '../../core/url.ts';

/**
 * Options of the `nats://` transport, read from the URL's query
 * (`nats://user:pass@host:4222?streamPrefix=APP_&retention=limits`).
 */
/**
 * Where a bound topic lives: an existing stream (`''`: whichever stream holds the subject, looked
 * up on first use) and the subject (a filter with `*`/`>` to consume; a literal one to publish).
 */
export interface NatsTarget {
  stream: string;
  subject: string;
}

export interface NatsOptions {
  /** Server to dial, `host:port`. */
  server: string;
  user: string | undefined;
  pass: string | undefined;
  /** `?token=`: auth token. */
  token: string | undefined;
  /**
   * `?streamPrefix=`: prefix of the stream made for each topic. A topic's dots become `~`
   * (stream names may not hold dots; topic names may not hold `~`, so two topics never collide).
   * @default "CONVEYOR_"
   */
  streamPrefix: string;
  /**
   * `?subjectPrefix=`: prefix of the subject a topic is published on (`subjectPrefix + topic`).
   * Empty means subject = topic, so plain NATS publishers can feed a topic.
   * @default ""
   */
  subjectPrefix: string;
  /**
   * `?retention=`: `interest` (a message is kept until every channel that existed when it was
   * published acked it; messages published before any channel exists are not kept — the
   * Conveyor model) or `limits` (kept until maxAgeMs / maxBytes, like a log).
   * @default "interest"
   */
  retention: 'interest' | 'limits';
  /** `?storage=`: `file` or `memory`. `#ephemeral` topics always use memory. @default "file" */
  storage: 'file' | 'memory';
  /** `?maxAgeMs=`: drop messages older than this, in ms; 0 = never. @default 0 */
  maxAgeMs: number;
  /** `?maxBytes=`: stream size limit in bytes (oldest dropped past it); -1 = none. @default -1 */
  maxBytes: number;
  /** `?replicas=`: stream replicas (clustered JetStream). @default 1 */
  replicas: number;
  /**
   * `?duplicateWindowMs=`: how long JetStream remembers a `Nats-Msg-Id` to drop a republished
   * duplicate, in ms. @default 120000 (NATS' own default)
   */
  duplicateWindowMs: number;
  /** `?publishTimeoutMs=`: how long a publish waits for its PubAck, in ms. @default 5000 */
  publishTimeoutMs: number;
  /** `?reconnectWaitMs=`: pause between reconnect attempts, in ms. @default 500 */
  reconnectWaitMs: number;
  /** `?ackWaitMs=`: ack_wait of a consumer when the subscriber gives no timeoutMs, in ms. @default 30000 */
  defaultAckWaitMs: number;
  /**
   * `?ephemeralInactiveMs=`: a `#ephemeral` channel's consumer is deleted by the server after it
   * has had no subscriber for this long, in ms. @default 5000
   */
  ephemeralInactiveMs: number;
  /**
   * `?envelope=false`: publish bare bodies — no NATS headers at all but `Nats-Msg-Id` (JetStream's
   * own dedup of a republished batch) — for consumers that know nothing of Conveyor.
   * @default true
   */
  envelope: boolean;
  /**
   * `?bind.<topic>=<stream>/<subject>`: the topic is a stream that already exists, neither created
   * nor updated; publishes go to `<subject>` as is (no subjectPrefix), channels consume with
   * `<subject>` as their filter (wildcards allowed; publishing then needs a literal subject).
   * `/<subject>` (no stream) uses whichever stream holds the subject.
   * @default none (Conveyor's own stream `<streamPrefix><topic>`)
   */
  topics: ReadonlyMap<string, NatsTarget>;
  /**
   * `?bind.<topic>:<channel>=<consumer>`: the channel is a durable pull consumer that already
   * exists on the topic's stream, consumed as it is configured (its filter, ack_wait,
   * max_ack_pending are never changed). @default none (Conveyor's own durable consumer)
   */
  consumers: ReadonlyMap<string, string>;
}

export const DEFAULT_NATS_PORT = 4222;

export function defaultNatsOptions(): Omit<NatsOptions, 'server' | 'user' | 'pass' | 'token'> {
  return {
    streamPrefix: 'CONVEYOR_',
    subjectPrefix: '',
    retention: 'interest',
    storage: 'file',
    maxAgeMs: 0,
    maxBytes: -1,
    replicas: 1,
    duplicateWindowMs: 120_000,
    publishTimeoutMs: 5_000,
    reconnectWaitMs: 500,
    defaultAckWaitMs: 30_000,
    ephemeralInactiveMs: 5_000,
    envelope: true,
    topics: new Map(),
    consumers: new Map(),
  };
}

const INTS = {
  maxAgeMs: [0, Number.MAX_SAFE_INTEGER],
  maxBytes: [-1, Number.MAX_SAFE_INTEGER],
  replicas: [1, 5],
  duplicateWindowMs: [1, Number.MAX_SAFE_INTEGER],
  publishTimeoutMs: [1, 3_600_000],
  reconnectWaitMs: [1, 3_600_000],
  ackWaitMs: [1, 86_400_000],
  ephemeralInactiveMs: [100, 86_400_000],
} as const;
const KNOWN = new Set<string>(['token', 'streamPrefix', 'subjectPrefix', 'retention', 'storage', 'envelope', ...Object.keys(INTS)]);
const BIND = 'bind.';

/** Reads and checks every option at once; reports every bad one in one ERR_BAD_OPTIONS. */
export function parseNatsOptions(parsed: ParsedUrl): NatsOptions {
  const { url, params } = parsed;
  const out: NatsOptions = {
    ...defaultNatsOptions(),
    server: `${url.hostname || '127.0.0.1'}:${url.port || DEFAULT_NATS_PORT}`,
    user: url.username ? decodeURIComponent(url.username) : undefined,
    pass: url.password ? decodeURIComponent(url.password) : undefined,
    token: params.get('token') ?? undefined,
  };
  const bad: string[] = [];
  const topics = new Map<string, NatsTarget>();
  const consumers = new Map<string, string>();
  out.topics = topics;
  out.consumers = consumers;
  for (const [key, value] of params) {
    if (key.startsWith(BIND)) readBinding(key, value, topics, consumers, bad);
    else if (!KNOWN.has(key)) bad.push(`${key}: unknown option`);
  }
  const envelope = params.get('envelope');
  if (envelope === 'false' || envelope === '0') out.envelope = false;
  else if (envelope !== null && envelope !== 'true' && envelope !== '1') bad.push(`envelope: expected true or false, got ${JSON.stringify(envelope)}`);
  for (const [key, [min, max]] of Object.entries(INTS)) {
    const raw = params.get(key);
    if (raw === null) continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      bad.push(`${key}: expected an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
      continue;
    }
    if (key === 'ackWaitMs') out.defaultAckWaitMs = n;
    else (out as unknown as Record<string, number>)[key] = n;
  }
  const retention = params.get('retention');
  if (retention !== null) {
    if (retention === 'interest' || retention === 'limits') out.retention = retention;
    else bad.push(`retention: expected "interest" or "limits", got ${JSON.stringify(retention)}`);
  }
  const storage = params.get('storage');
  if (storage !== null) {
    if (storage === 'file' || storage === 'memory') out.storage = storage;
    else bad.push(`storage: expected "file" or "memory", got ${JSON.stringify(storage)}`);
  }
  const streamPrefix = params.get('streamPrefix');
  if (streamPrefix !== null) {
    if (/^[^\s.*>/\\~]*$/.test(streamPrefix)) out.streamPrefix = streamPrefix;
    else bad.push(`streamPrefix: may not contain whitespace, . * > / \\ or ~`);
  }
  const subjectPrefix = params.get('subjectPrefix');
  if (subjectPrefix !== null) {
    if (/^([^\s.*>]+\.)*$/.test(subjectPrefix)) out.subjectPrefix = subjectPrefix;
    else bad.push(`subjectPrefix: expected dot-terminated subject tokens like "app.", got ${JSON.stringify(subjectPrefix)}`);
  }
  if (bad.length > 0) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `bad nats:// options: ${bad.join('; ')}`, { details: { bad } });
  }
  return out;
}

/** One `bind.` query key: `bind.<topic>=<stream>/<subject>` or `bind.<topic>:<channel>=<consumer>`. */
function readBinding(key: string, value: string, topics: Map<string, NatsTarget>, consumers: Map<string, string>, bad: string[]): void {
  const name = key.slice(BIND.length);
  // Topic and channel names never hold ':' (src/engine/names.ts), so it separates them.
  const colon = name.indexOf(':');
  if (name === '' || colon === 0 || colon === name.length - 1) {
    bad.push(`${key}: expected bind.<topic> or bind.<topic>:<channel>`);
    return;
  }
  const problem = colon > 0 ? consumerProblem(value) : targetProblem(value);
  if (problem) bad.push(`${key}: ${problem}`);
  else if (colon > 0) consumers.set(name, value);
  else topics.set(name, parseTarget(value));
}

/** `<stream>/<subject>` → its parts (checked by targetProblem first). */
export function parseTarget(value: string): NatsTarget {
  const slash = value.indexOf('/');
  return { stream: value.slice(0, slash), subject: value.slice(slash + 1) };
}

/** Why `<stream>/<subject>` is not one, or undefined. */
export function targetProblem(value: string): string | undefined {
  const slash = value.indexOf('/');
  if (slash < 0) return `expected <stream>/<subject> ("/${value}" for whichever stream holds the subject), got ${JSON.stringify(value)}`;
  const stream = value.slice(0, slash);
  if (stream !== '' && !STREAM_NAME.test(stream)) return `stream ${JSON.stringify(stream)} is not a JetStream name (no whitespace, . * > / \\)`;
  return subjectProblem(value.slice(slash + 1));
}

/** Why `value` is not a durable consumer's name, or undefined. */
export function consumerProblem(value: string): string | undefined {
  return STREAM_NAME.test(value) ? undefined : `expected the name of an existing durable consumer (no whitespace, . * > / \\), got ${JSON.stringify(value)}`;
}

const STREAM_NAME = /^[^\s.*>/\\]+$/;

/** A subject or filter: non-empty tokens, `*` a whole token, `>` only a whole last token. */
function subjectProblem(subject: string): string | undefined {
  const tokens = subject.split('.');
  const ok =
    subject !== '' &&
    !/\s/.test(subject) &&
    tokens.every((tok, i) => tok !== '' && (tok === '*' || tok === '>' ? tok !== '>' || i === tokens.length - 1 : !/[*>]/.test(tok)));
  return ok ? undefined : `${JSON.stringify(subject)} is not a NATS subject or filter`;
}

/** True when a subject is a filter (`*`, `>`): it can be consumed, not published to. */
export function isFilter(subject: string): boolean {
  return subject.split('.').some((tok) => tok === '*' || tok === '>');
}

const NAME = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/;

/** Conveyor's naming rule (NSQ's): 1–64 of `[.a-zA-Z0-9_-]`, optionally ending in `#ephemeral`. */
export function checkName(kind: 'topic' | 'channel', name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 64 || !NAME.test(name)) {
    throw new ConveyorError('ERR_BAD_NAME', `bad ${kind} name ${JSON.stringify(name)}: expected 1-64 of [.a-zA-Z0-9_-], optionally ending in #ephemeral`, {
      details: { [kind]: name },
    });
  }
}

export function isEphemeral(name: string): boolean {
  return name.endsWith('#ephemeral');
}

/** The JetStream stream that holds `topic`. */
export function streamName(options: Pick<NatsOptions, 'streamPrefix'>, topic: string): string {
  return `${options.streamPrefix}${topic.replaceAll('.', '~')}`;
}

/** The durable consumer that is `channel` (same character rule as stream names). */
export function consumerName(channel: string): string {
  return channel.replaceAll('.', '~');
}

export function subjectOf(options: Pick<NatsOptions, 'subjectPrefix'>, topic: string): string {
  return `${options.subjectPrefix}${topic}`;
}
