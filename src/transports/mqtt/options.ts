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
  for (const key of params.keys()) if (key !== 'topicPrefix' && !(key in INTS)) bad.push(`${key}: unknown option`);
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
