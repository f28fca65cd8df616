import { ConveyorError } from '../../core/errors.ts';
import type { ParsedUrl } from '../../core/url.ts';

/**
 * Options of the `mqtt://` / `mqtts://` transport, from the URL's query
 * (`mqtt://user:pass@host:1883?sessionExpirySec=86400&topicPrefix=plant/`).
 */
export interface MqttOptions {
  /** Broker URL without the query (mqtt.js dials it). */
  brokerUrl: string;
  user: string | undefined;
  pass: string | undefined;
  /**
   * `?topicPrefix=`: prefix of the MQTT topic a Conveyor topic is published on. @default ""
   */
  topicPrefix: string;
  /**
   * `?sessionExpirySec=`: how long the broker keeps a subscriber's session (its shared
   * subscription and the QoS 1 messages queued for it) while the subscriber is away, in seconds.
   * Only a stable client id (ConnectOptions.clientId) can resume it. @default 3600
   */
  sessionExpirySec: number;
  /** `?keepaliveSec=`: MQTT keepalive, in seconds. @default 30 */
  keepaliveSec: number;
  /** `?reconnectMs=`: pause between reconnect attempts, in ms. @default 500 */
  reconnectMs: number;
  /** `?connectTimeoutMs=`: CONNECT → CONNACK deadline, in ms. @default 5000 */
  connectTimeoutMs: number;
  /** `?publishTimeoutMs=`: how long a publish waits for its PUBACK, in ms. @default 10000 */
  publishTimeoutMs: number;
  /**
   * `?maxMessageBytes=`: largest body accepted, in bytes. MQTT allows up to 268435455 for a whole
   * packet (Mosquitto's message_size_limit may be lower); 1 MiB keeps it in line with NATS, NSQ
   * and Kafka defaults. @default 1048576
   */
  maxMessageBytes: number;
  /**
   * `?envelope=false`: publish bare payloads — no user properties, no Content Type — for
   * subscribers that know nothing of Conveyor. Headers, id and publish time are then not carried.
   * @default true
   */
  envelope: boolean;
  /**
   * `?bind.<topic>=<mqtt topic or filter>`: the topic is that MQTT topic as is (no topicPrefix, `/`
   * levels allowed). Channels subscribe `$share/<channel>/<filter>`, so `+` and `#` wildcards
   * work; publishing needs a topic without them. There is nothing to bind a channel to: it is a
   * shared-subscription group, named by the channel. @default none (`topicPrefix + topic`)
   */
  topics: ReadonlyMap<string, string>;
}

export function defaultMqttOptions(): Omit<MqttOptions, 'brokerUrl' | 'user' | 'pass'> {
  return {
    topicPrefix: '',
    sessionExpirySec: 3600,
    keepaliveSec: 30,
    reconnectMs: 500,
    connectTimeoutMs: 5000,
    publishTimeoutMs: 10_000,
    maxMessageBytes: 1_048_576,
    envelope: true,
    topics: new Map(),
  };
}

const INTS: Record<string, readonly [number, number]> = {
  sessionExpirySec: [0, 4_294_967_295],
  keepaliveSec: [0, 65_535],
  reconnectMs: [1, 3_600_000],
  connectTimeoutMs: [1, 600_000],
  publishTimeoutMs: [1, 3_600_000],
  maxMessageBytes: [1, 268_000_000],
};

/** Reads and checks every option at once; reports every bad one in one ERR_BAD_OPTIONS. */
export function parseMqttOptions(parsed: ParsedUrl): MqttOptions {
  const { url, params, scheme } = parsed;
  const bad: string[] = [];
  const port = url.port || (scheme === 'mqtts' ? '8883' : '1883');
  const out: MqttOptions = {
    ...defaultMqttOptions(),
    brokerUrl: `${scheme}://${url.hostname || '127.0.0.1'}:${port}`,
    user: url.username ? decodeURIComponent(url.username) : undefined,
    pass: url.password ? decodeURIComponent(url.password) : undefined,
  };
  const topics = new Map<string, string>();
  out.topics = topics;
  for (const [key, value] of params) {
    if (key.startsWith(BIND)) {
      const topic = key.slice(BIND.length);
      // Topic and channel names never hold ':' (src/engine/names.ts).
      const problem = topic === '' || topic.includes(':') ? "expected bind.<topic> (a channel is a shared-subscription group; nothing to bind)" : filterProblem(value);
      if (problem) bad.push(`${key}: ${problem}`);
      else topics.set(topic, value);
    } else if (key !== 'topicPrefix' && key !== 'envelope' && !(key in INTS)) bad.push(`${key}: unknown option`);
  }
  const envelope = params.get('envelope');
  if (envelope === 'false' || envelope === '0') out.envelope = false;
  else if (envelope !== null && envelope !== 'true' && envelope !== '1') bad.push(`envelope: expected true or false, got ${JSON.stringify(envelope)}`);
  for (const [key, [min, max]] of Object.entries(INTS)) {
    const raw = params.get(key);
    if (raw === null) continue;
    const n = Number(raw);
    if (Number.isInteger(n) && n >= min && n <= max) (out as unknown as Record<string, number>)[key] = n;
    else bad.push(`${key}: expected an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  }
  const prefix = params.get('topicPrefix');
  if (prefix !== null) {
    if (/^[^#+$\0]*$/.test(prefix)) out.topicPrefix = prefix;
    else bad.push('topicPrefix: may not contain #, +, $ or NUL');
  }
  if (bad.length > 0) throw new ConveyorError('ERR_BAD_OPTIONS', `bad ${scheme}:// options: ${bad.join('; ')}`, { details: { bad } });
  return out;
}

const BIND = 'bind.';

/** Why `filter` is not an MQTT topic filter one may subscribe to (MQTT 5 §4.7), or undefined. */
export function filterProblem(filter: string): string | undefined {
  if (filter === '' || filter.includes('\0')) return `expected an MQTT topic or filter, got ${JSON.stringify(filter)}`;
  if (filter.startsWith('$share/')) return `${JSON.stringify(filter)} is a shared subscription; bind the filter, the channel makes the group`;
  const levels = filter.split('/');
  const ok = levels.every((level, i) => (level.includes('#') ? level === '#' && i === levels.length - 1 : !level.includes('+') || level === '+'));
  return ok ? undefined : `${JSON.stringify(filter)} is not an MQTT filter (+ and # are whole levels, # only the last)`;
}

/** True when a filter holds wildcards: it can be subscribed to, not published to. */
export function isWildcard(filter: string): boolean {
  return filter.split('/').some((level) => level === '+' || level === '#');
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

/**
 * MQTT topic of a Conveyor topic. `#` is MQTT's wildcard, so an `#ephemeral` suffix is written
 * `~ephemeral` on the wire (`~` is not allowed in Conveyor names, so no collision).
 */
export function mqttTopic(options: Pick<MqttOptions, 'topicPrefix'>, topic: string): string {
  return `${options.topicPrefix}${topic.replace('#', '~')}`;
}

/** Where a channel's nacked messages are republished: only that channel's subscribers read it. */
export function retryTopic(options: Pick<MqttOptions, 'topicPrefix'>, topic: string, channel: string): string {
  return `${options.topicPrefix}conveyor-retry/${channel.replace('#', '~')}/${topic.replace('#', '~')}`;
}

/** MQTT 5 shared subscription: `$share/<group>/<filter>`; the group is the channel. */
export function sharedFilter(channel: string, filter: string): string {
  return `$share/${channel.replace('#', '~')}/${filter}`;
}
