import type { IPublishPacket, MqttClient } from 'mqtt';
import { ConveyorError } from '../../core/errors.ts';
import type { Delivery, Headers } from '../../core/message.ts';
import type { Subscription } from '../../core/transport.ts';

/** User properties Conveyor sets on every message (the broker counts and stamps nothing). */
export const PROP = { id: 'conveyor-id', attempts: 'conveyor-attempts', ts: 'conveyor-ts' } as const;
/** The MQTT topic a message of a bound filter came on (`plant/kitchen/temperature` for `plant/+/temperature`). */
export const TOPIC_HEADER = 'mqtt-topic';

/**
 * Passed to mqtt.js' handleMessage callback to stop it sending the PUBACK itself: mqtt.js skips
 * the PUBACK when the callback gets an error, and goes on with the next packet either way.
 * The PUBACK is sent when the handler acks.
 */
const DEFER_PUBACK = new Error('conveyor: PUBACK deferred to ack()');

export interface MqttSubscriptionHost {
  /** Publishes a nacked message's copy to the channel's retry topic; resolves on its PUBACK. */
  republish(client: MqttClient, packet: IPublishPacket, attempts: number): Promise<void>;
  onError(err: unknown): void;
}

let nextLocalId = 0;

/**
 * One subscriber of a channel: its own MQTT session (client id, clean start false, session
 * expiry) holding the shared subscriptions `$share/<channel>/<topic>` and
 * `$share/<channel>/<retry topic>`. The broker sends at most `receiveMaximum` (= maxInFlight at
 * connect) unacknowledged messages; this class also bounds them locally (pause, setMaxInFlight).
 */
export class MqttSubscription implements Subscription {
  readonly topic: string;
  readonly channel: string;
  readonly client: MqttClient;
  #host: MqttSubscriptionHost;
  #onMessage: (d: Delivery) => void;
  #max: number;
  #inFlight = 0;
  /** Deliveries of the current connection not yet PUBACKed (close hands them back). */
  #live = new Set<MqttDelivery>();
  #held: IPublishPacket[] = [];
  #paused = false;
  #closed = false;
  /** Bumped on every (re)connect: deliveries of an older connection no longer PUBACK. */
  generation = 0;
  #closing: Promise<void> | undefined;
  #endSession: boolean;
  #whenClosed: Array<() => void> = [];
  /** Set for a bound topic or filter: deliveries carry the MQTT topic they came on as `mqtt-topic`. */
  topicHeader = false;

  constructor(
    topic: string,
    channel: string,
    client: MqttClient,
    maxInFlight: number,
    endSession: boolean,
    host: MqttSubscriptionHost,
    onMessage: (d: Delivery) => void,
  ) {
    this.topic = topic;
    this.channel = channel;
    this.client = client;
    this.#max = maxInFlight;
    this.#endSession = endSession;
    this.#host = host;
    this.#onMessage = onMessage;
    client.handleMessage = (packet, callback) => {
      // QoS 0 (paho's default): the publisher chose at most once, so there is no PUBACK to hold,
      // but the message is delivered all the same. QoS 2 cannot arrive: we subscribe at QoS 1.
      if (packet.qos !== 1) {
        if (packet.qos === 0) this.#receive(packet);
        callback();
        return;
      }
      this.#receive(packet);
      callback(DEFER_PUBACK);
    };
    client.on('connect', () => {
      // A new connection: the broker resends what was unacked (DUP) if the session survived.
      this.generation++;
      this.#held.length = 0;
      this.#live.clear();
      this.#inFlight = 0;
    });
  }

  #receive(packet: IPublishPacket): void {
    if (this.#closed) return; // not PUBACKed: the broker keeps it for the session
    if (this.#paused || this.#inFlight >= this.#max || this.#held.length > 0) {
      this.#held.push(packet);
      return;
    }
    this.#deliver(packet);
  }

  #deliver(packet: IPublishPacket): void {
    this.#inFlight++;
    const d = new MqttDelivery(this, packet, this.generation);
    this.#live.add(d);
    try {
      this.#onMessage(d);
    } catch (err) {
      this.#host.onError(err);
    }
  }

  /** @internal Sends the PUBACK for a delivery of the current connection. */
  puback(d: MqttDelivery): void {
    if (d.generation !== this.generation || !this.#live.delete(d)) return;
    if (d.qos === 1) this.#sendPuback(d.messageId);
    this.#inFlight--;
    this.#drain();
  }

  #sendPuback(messageId: number | undefined): void {
    // biome-ignore lint/complexity/useLiteralKeys: mqtt.js has no public way to send a PUBACK later.
    (this.client as unknown as { _sendPacket(p: object): void })['_sendPacket']({ cmd: 'puback', messageId, reasonCode: 0 });
  }

  /** @internal Republishes a nacked delivery to the retry topic after `delayMs`, then PUBACKs it. */
  retry(d: MqttDelivery, packet: IPublishPacket, delayMs: number): void {
    const go = () => {
      if (d.generation !== this.generation || this.#closed) return;
      this.#host.republish(this.client, packet, d.attempts + 1).then(
        () => this.puback(d),
        (err) => this.#host.onError(err), // left unacked: the broker resends it on reconnect
      );
    };
    if (delayMs > 0) setTimeout(go, delayMs).unref();
    else go();
  }

  #drain(): void {
    while (!this.#paused && !this.#closed && this.#held.length > 0 && this.#inFlight < this.#max) {
      this.#deliver(this.#held.shift()!);
    }
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (this.#closed) return;
    this.#paused = false;
    this.#drain();
  }

  setMaxInFlight(n: number): void {
    if (!Number.isInteger(n) || n < 1) {
      throw new ConveyorError('ERR_BAD_OPTIONS', `maxInFlight must be a positive integer, got ${n}`);
    }
    this.#max = n;
    this.#drain();
  }

  /** Runs `fn` once the subscription is closed. */
  whenClosed(fn: () => void): void {
    this.#whenClosed.push(fn);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    for (const fn of this.#whenClosed.splice(0)) fn();
    // Nothing is PUBACKed: the session keeps the unacked and held messages, and the channel's
    // next subscriber in this process (or a restart with the same clientId) resumes the session
    // and gets them again with DUP. An #ephemeral channel's session ends here instead.
    this.generation++;
    for (const d of this.#live) d.expire();
    this.#live.clear();
    this.#held.length = 0;
    await this.client.endAsync(false, this.#endSession ? { properties: { sessionExpiryInterval: 0 } } : {}).catch(() => this.client.end(true));
  }
}

/** One MQTT message handed to a consumer. */
export class MqttDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly channel: string;
  readonly body: Uint8Array;
  readonly headers: Headers;
  readonly attempts: number;
  readonly timestamp: number;
  readonly messageId: number;
  /** 0 from an at-most-once publisher (nothing to PUBACK), else 1. */
  readonly qos: number;
  readonly generation: number;
  #sub: MqttSubscription;
  #packet: IPublishPacket;
  #settled = false;

  constructor(sub: MqttSubscription, packet: IPublishPacket, generation: number) {
    this.#sub = sub;
    this.#packet = packet;
    this.generation = generation;
    this.messageId = packet.messageId ?? 0;
    this.qos = packet.qos;
    this.topic = sub.topic;
    this.channel = sub.channel;
    this.body = packet.payload as Uint8Array;
    const headers: Headers = {};
    let id: string | undefined;
    let attempts = 1;
    let ts = 0;
    const props = packet.properties?.userProperties;
    if (props) {
      for (const key in props) {
        const raw = props[key]!;
        const value = Array.isArray(raw) ? raw[raw.length - 1]! : raw;
        if (key === PROP.id) id = value;
        else if (key === PROP.attempts) attempts = Number(value) || 1;
        else if (key === PROP.ts) ts = Number(value) || 0;
        else headers[key] = value;
      }
    }
    const contentType = packet.properties?.contentType;
    if (contentType !== undefined && headers['content-type'] === undefined) headers['content-type'] = contentType;
    // A retry copy already carries it (its own topic is the retry topic).
    if (sub.topicHeader && headers[TOPIC_HEADER] === undefined) headers[TOPIC_HEADER] = packet.topic;
    // DUP: the broker resends after a reconnect, so the message was delivered once more.
    this.attempts = attempts + (packet.dup ? 1 : 0);
    this.id = id ?? `mqtt-${process.pid}-${++nextLocalId}`;
    this.timestamp = ts || Date.now();
    this.headers = headers;
  }

  /** @internal The packet as received (nack copies it to the retry topic). */
  get packet(): IPublishPacket {
    return this.#packet;
  }

  /** @internal Its subscription closed: later ack/nack are ignored (the session keeps it). */
  expire(): void {
    this.#settled = true;
  }

  ack(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#sub.puback(this);
  }

  nack(delayMs = 0): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#sub.retry(this, this.#packet, delayMs);
  }

  /** MQTT has no in-flight timeout to restart. */
  touch(): void {}
}
