/**
 * `mqtt://` / `mqtts://` — MQTT 5 (mqtt.js), QoS 1.
 *
 * | Conveyor      | MQTT 5                                                                  |
 * |---------------|-------------------------------------------------------------------------|
 * | topic         | topic (`topicPrefix + topic`; `#ephemeral` is written `~ephemeral`)      |
 * | channel       | shared subscription `$share/<channel>/<topic>`: one subscriber of the group gets each message, every group gets it |
 * | subscriber    | its own session: clean start false, session expiry `sessionExpirySec`, resumed by the channel's next subscriber |
 * | confirm       | PUBACK (QoS 1)                                                          |
 * | ack           | PUBACK, sent when the handler acks (not on receipt)                     |
 * | maxInFlight   | receive maximum (given at connect) + a local bound                      |
 * | headers       | user properties (content-type as MQTT 5's Content Type); id, attempts and publish time ride as `conveyor-*` ones |
 *
 * What MQTT cannot do, and what Conveyor does instead:
 * - No nack: `nack(delay)` waits `delay` (the message stays unacknowledged and holds its slot),
 *   republishes a copy with `conveyor-attempts + 1` to the channel's own retry topic
 *   (`conveyor-retry/<channel>/<topic>`, also shared-subscribed by the channel), and PUBACKs the
 *   original once the copy is confirmed. A crash in between redelivers the original: at least once.
 *   The delay lives in this process, so `features.delayedNack` is false.
 * - No in-flight timeout: an unacked message is resent only when its session reconnects
 *   (`timeoutRedelivery` false); `touch()` is a no-op.
 * - Attempts are not counted by the broker: a header carries them, plus one when the broker
 *   resends with DUP after a reconnect.
 * - PUBACKs go out as handlers ack, not in receive order as MQTT 5 §4.6 asks of clients: brokers
 *   (Mosquitto, EMQX, HiveMQ) match them by packet id, and in-order acks would let one slow
 *   message hold up every later PUBACK and, through the receive maximum, the whole session.
 * - A shared subscription gets only messages published after it exists (nothing is retained for it).
 * - A channel lives in its subscribers' sessions. Closing a subscriber keeps its session (for
 *   `sessionExpirySec`) with what it had not acked and what keeps arriving for it; the next
 *   subscriber of that channel in this process takes the same session name and resumes it (the
 *   broker resends with DUP: attempts + 1). Across a restart only a stable `clientId` (given to
 *   connect()) resumes it; with the default random one a closed session is never resumed and what
 *   it held is lost when it expires. The broker also gives an offline member of a shared
 *   subscription its share, so an abandoned session strands messages until it expires: keep
 *   `sessionExpirySec` as short as restarts allow. `#ephemeral` channels end their sessions on close.
 *
 * Existing topics (`bind.`, options.ts): `?bind.<topic>=<mqtt topic or filter>` names the topic as
 * is (`sensors/+/temp` to subscribe; a topic without wildcards to publish); `?envelope=false`
 * publishes bare payloads (no user properties, no Content Type).
 *
 * @example
 * const transport = await connect('mqtt://127.0.0.1:1883', { clientId: 'detector-1' });
 */
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import type { IClientPublishOptions, IPublishPacket, MqttClient } from 'mqtt';
import type { ConnectOptions, TransportFactory } from '../../core/transport.ts';
import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, OutgoingMessage } from '../../core/message.ts';
import { loadOptional } from '../../core/optional.ts';
import { type SubscribeOptions, type Subscription, sendsBare, type Transport, type TransportFeatures } from '../../core/transport.ts';
import type { ParsedUrl } from '../../core/url.ts';
import { checkName, filterProblem, isWildcard, type MqttOptions, mqttTopic, parseMqttOptions, retryTopic, sharedFilter } from './options.ts';
import { MqttSubscription, PROP, TOPIC_HEADER } from './subscription.ts';

type MqttModule = typeof import('mqtt');

/** Connection trouble the client handles itself (reconnect) is reported here, not thrown. */
const errors = diagnosticsChannel('conveyor:mqtt:error');

export const createTransport: TransportFactory = (url, options) => MqttTransport.connect(url, options);

export class MqttTransport implements Transport {
  readonly kind: string;
  readonly features: TransportFeatures;
  readonly options: MqttOptions;
  #mqtt: MqttModule;
  #publisher: MqttClient;
  #clientId: string;
  #subs = new Set<MqttSubscription>();
  /** Session indices in use per topic/channel. */
  #indices = new Map<string, Set<number>>();
  #pending = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  private constructor(kind: string, mqtt: MqttModule, publisher: MqttClient, options: MqttOptions, clientId: string) {
    this.kind = kind;
    this.#mqtt = mqtt;
    this.#publisher = publisher;
    this.options = options;
    this.#clientId = clientId;
    this.features = {
      delayedNack: false,
      delayedPublish: false,
      timeoutRedelivery: false,
      touch: false,
      persistent: false,
      guaranteedOrder: false,
      attemptsCounted: false,
      maxMessageBytes: options.maxMessageBytes,
      bind: true,
    };
  }

  static async connect(url: ParsedUrl, connectOptions: ConnectOptions = {}): Promise<MqttTransport> {
    const options = parseMqttOptions(url);
    const mqtt = await loadOptional<MqttModule>('mqtt', `${url.scheme}:// transport`);
    const clientId = connectOptions.clientId ?? `conveyor-${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
    const publisher = await dial(mqtt, options, `${clientId}-pub`, { clean: true });
    return new MqttTransport(url.scheme, mqtt, publisher, options, clientId);
  }

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    this.#open();
    checkName('topic', topic);
    for (const m of messages) {
      if (m.body.length > this.options.maxMessageBytes) {
        throw new ConveyorError('ERR_TOO_LARGE', `message of ${m.body.length} bytes is larger than maxMessageBytes ${this.options.maxMessageBytes}`, {
          details: { size: m.body.length, limit: this.options.maxMessageBytes },
        });
      }
      if (m.delayMs !== undefined && m.delayMs > 0) {
        throw new ConveyorError('ERR_BAD_OPTIONS', 'mqtt:// cannot delay a publish (features.delayedPublish is false)');
      }
    }
    const target = this.options.topics.get(topic) ?? mqttTopic(this.options, topic);
    if (isWildcard(target)) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `mqtt:// topic ${topic} is bound to the filter ${JSON.stringify(target)}: it can be subscribed to, not published to`, {
        details: { topic, filter: target },
      });
    }
    if (messages.length === 0) return;
    const now = String(Date.now());
    const acks = messages.map((m) => {
      if (sendsBare(this.options.envelope, m)) return this.#confirm(this.#publisher, target, m.body, { qos: 1 });
      const { 'content-type': contentType, ...headers } = m.headers ?? {};
      const props: Record<string, string> = { ...headers, [PROP.ts]: now };
      if (m.id !== undefined) props[PROP.id] = m.id;
      // content-type in MQTT 5's own Content Type property, where other clients (paho) look.
      const properties = contentType === undefined ? { userProperties: props } : { userProperties: props, contentType };
      return this.#confirm(this.#publisher, target, m.body, { qos: 1, properties });
    });
    const work = Promise.allSettled(acks);
    this.#pending.add(work);
    const results = await work.finally(() => this.#pending.delete(work));
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    if (failed.length > 0) {
      throw new ConveyorError(
        'ERR_NOT_CONFIRMED',
        `mqtt:// ${failed.length} of ${messages.length} messages to ${topic} were not confirmed: ${(failed[0]!.reason as Error)?.message}`,
        { cause: failed[0]!.reason, retryable: true, details: { topic, failed: failed.length } },
      );
    }
  }

  /** Publishes with QoS 1 and waits (bounded) for the PUBACK. */
  #confirm(client: MqttClient, topic: string, body: Uint8Array, opts: IClientPublishOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ConveyorError('ERR_NOT_CONFIRMED', `no PUBACK within ${this.options.publishTimeoutMs} ms`, { retryable: true })),
        this.options.publishTimeoutMs,
      );
      client.publish(topic, Buffer.from(body.buffer, body.byteOffset, body.byteLength), opts, (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  async subscribe(topic: string, channel: string, options: SubscribeOptions, onMessage: (d: Delivery) => void): Promise<Subscription> {
    this.#open();
    checkName('topic', topic);
    checkName('channel', channel);
    const { maxInFlight } = options;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 65_535) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `maxInFlight must be an integer in [1, 65535] for mqtt (receive maximum), got ${maxInFlight}`);
    }
    const filter = this.#filterOf(topic, channel, options);
    const bound = filter !== mqttTopic(this.options, topic);
    // One session per subscriber, named by the lowest index free for this channel: a subscriber
    // that replaces a closed one resumes its session (its unacked messages and what was queued
    // for it), and a restart with the same clientId resumes the same sessions.
    const key = `${topic}/${channel}`;
    const used = this.#indices.get(key) ?? new Set<number>();
    this.#indices.set(key, used);
    let n = 0;
    while (used.has(n)) n++;
    used.add(n);
    const ephemeral = channel.endsWith('#ephemeral');
    let sub: MqttSubscription | undefined;
    let client: MqttClient;
    try {
      client = await dial(
        this.#mqtt,
        this.options,
        `${this.#clientId}-${key.replaceAll('#', '~')}-${n}`,
        {
          clean: false,
          properties: { sessionExpiryInterval: ephemeral ? 0 : this.options.sessionExpirySec, receiveMaximum: maxInFlight },
        },
        (c) => {
          sub = new MqttSubscription(
            topic,
            channel,
            c,
            maxInFlight,
            ephemeral,
            {
              republish: (cl, packet, attempts) => this.#republish(cl, packet, topic, channel, attempts, bound),
              onError: (error) => errors.hasSubscribers && errors.publish({ topic, channel, error }),
            },
            onMessage,
          );
          sub.topicHeader = bound;
        },
      );
    } catch (err) {
      used.delete(n);
      throw err;
    }
    const made = sub as MqttSubscription | undefined;
    if (!made) throw new ConveyorError('ERR_TRANSPORT', 'mqtt:// subscription was not prepared');
    made.whenClosed(() => {
      this.#subs.delete(made);
      used.delete(n);
    });
    try {
      await client.subscribeAsync(
        [sharedFilter(channel, filter), sharedFilter(channel, retryTopic(this.options, topic, channel))],
        { qos: 1 },
      );
    } catch (cause) {
      await made.close();
      throw new ConveyorError('ERR_TRANSPORT', `mqtt:// could not subscribe ${channel} to ${topic}: ${(cause as Error).message}`, { cause });
    }
    this.#subs.add(made);
    return made;
  }

  /** The subscription's own binding, else the URL's, else Conveyor's topic name. */
  #filterOf(topic: string, channel: string, options: SubscribeOptions): string {
    const bind = options.bind;
    const bad: string[] = [];
    if (bind?.channel !== undefined) bad.push('bind.channel: MQTT has no channel object to bind (a channel is a shared-subscription group, named by the channel)');
    const problem = bind?.topic === undefined ? undefined : filterProblem(bind.topic);
    if (problem) bad.push(`bind.topic: ${problem}`);
    if (bad.length) throw new ConveyorError('ERR_BAD_OPTIONS', `mqtt:// subscribe ${topic}:${channel}: ${bad.join('; ')}`, { details: { bad } });
    return bind?.topic ?? this.options.topics.get(topic) ?? mqttTopic(this.options, topic);
  }

  #republish(client: MqttClient, packet: IPublishPacket, topic: string, channel: string, attempts: number, bound: boolean): Promise<void> {
    const props: Record<string, string | string[]> = { ...packet.properties?.userProperties, [PROP.attempts]: String(attempts) };
    // From a bound filter: keep the topic it came on (a copy's own topic is the retry topic).
    if (bound && props[TOPIC_HEADER] === undefined) props[TOPIC_HEADER] = packet.topic;
    const contentType = packet.properties?.contentType;
    return this.#confirm(client, retryTopic(this.options, topic, channel), packet.payload as Uint8Array, {
      qos: 1,
      properties: contentType === undefined ? { userProperties: props } : { userProperties: props, contentType },
    });
  }

  #open(): void {
    if (this.#closing) throw new ConveyorError('ERR_CLOSED', `${this.kind}:// transport is closed`);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.allSettled([...this.#subs].map((s) => s.close()));
    await Promise.allSettled([...this.#pending]);
    await this.#publisher.endAsync().catch(() => this.#publisher.end(true));
  }
}

/**
 * Connects one client. `prepare` runs before any packet can arrive: a resumed session's
 * messages come right after CONNACK, and must meet the subscription's handler, not mqtt.js'
 * default one (which would PUBACK them unseen).
 */
async function dial(
  mqtt: MqttModule,
  options: MqttOptions,
  clientId: string,
  extra: Record<string, unknown>,
  prepare?: (client: MqttClient) => void,
): Promise<MqttClient> {
  const client = mqtt.connect(options.brokerUrl, {
    protocolVersion: 5,
    clientId,
    username: options.user,
    password: options.pass,
    keepalive: options.keepaliveSec,
    reconnectPeriod: options.reconnectMs,
    connectTimeout: options.connectTimeoutMs,
    ...extra,
  });
  // mqtt.js emits 'error' for refused CONNACKs and protocol trouble while it reconnects; with no
  // listener that would throw out of the event loop. It reconnects by itself, so note and go on.
  client.on('error', (err) => {
    if (errors.hasSubscribers) errors.publish({ clientId, error: err });
  });
  // Small packets (PUBACKs, one PUBLISH) should leave at once, not wait behind Nagle.
  client.on('connect', () => (client.stream as { setNoDelay?(on: boolean): void }).setNoDelay?.(true));
  prepare?.(client);
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (err?: Error) => {
        client.off('connect', ok);
        client.off('error', fail);
        client.off('close', fail);
        reject(err ?? new Error('connection closed before CONNACK'));
      };
      const ok = () => {
        client.off('error', fail);
        client.off('close', fail);
        resolve();
      };
      client.once('connect', ok);
      client.once('error', fail);
      client.once('close', fail);
    });
  } catch (cause) {
    client.end(true);
    throw new ConveyorError('ERR_TRANSPORT', `mqtt:// could not connect to ${options.brokerUrl}: ${(cause as Error).message}`, { cause });
  }
  return client;
}
