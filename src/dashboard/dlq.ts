/**
 * Dead letters over any transport: list, replay to the original topic, discard. The dead letters
 * of `<topic>` are the messages of channel `dlq` of `<topic>.dead` (the runtime's dead-letter
 * topic); on the embedded engine and NSQ the first channel of a topic receives what the topic
 * kept, so `dlq` sees every dead letter published before it existed too.
 *
 * Everything here goes through the Transport contract (subscribe, publish, ack, nack), so the
 * CLI and the dashboard share it and it works on every engine. Replay is at least once and
 * never loses a message: a dead letter is acked only after its copy on the original topic is
 * confirmed; if that publish fails, the dead letter is nacked back and stays.
 */
import { ConveyorError } from '../core/errors.ts';
import { HEADER, type Delivery, type Headers, type OutgoingMessage } from '../core/message.ts';
import type { Subscription, Transport } from '../core/transport.ts';
import { type ShownBody, showBody } from './decode.ts';

/** The channel of `<topic>.dead` that holds the dead letters for inspection and replay. */
export const DLQ_CHANNEL = 'dlq';
/** Most dead letters one pass holds (the engine's default max RDY is 2500). */
export const MAX_PASS = 1000;
const DEAD_PREFIX = 'conveyor-dead-';

export interface DeadLetter {
  /** The logical message id (the original's), or the broker's id when there is none. */
  id: string;
  /** The dead-letter topic it sits in. */
  deadTopic: string;
  /** Where it came from (conveyor-dead-topic), where replay sends it. */
  topic: string;
  channel: string | undefined;
  code: string | undefined;
  reason: string | undefined;
  /** Attempts the original had when it was given up on (conveyor-dead-attempts). */
  attempts: number | undefined;
  /** When it died, ISO 8601. */
  at: string | undefined;
  /** When the broker took the dead letter, ms since the epoch. */
  timestamp: number;
  headers: Headers;
  body: ShownBody;
}

export interface DlqOptions {
  /** Most dead letters looked at per pass. @default 100 (list), 1000 (replay, purge) */
  limit?: number;
  /** A pass ends when no delivery came for this long, ms. @default 250 */
  idleMs?: number;
  /**
   * How long a pass waits for its first delivery, ms: a subscription over a network (connect,
   * SUB, RDY) takes longer to deliver its first message than the gap between later ones, and an
   * empty answer must not come from a slow start. @default max(1000, 4 × idleMs)
   */
  firstWaitMs?: number;
  /** @default 'dlq' */
  channel?: string;
}

/** Which dead letters an action applies to: ids (logical or broker ids), or every one. */
export type Selection = 'all' | readonly string[];

export interface DlqResult {
  /** Ids acted on (replayed or discarded). */
  done: string[];
  /** Dead letters looked at and left where they were. */
  kept: number;
  /** Selected ids that were not found. */
  missing: string[];
}

export function deadTopicOf(topic: string): string {
  return topic.endsWith('.dead') ? topic : `${topic}.dead`;
}

/** A delivery of a dead-letter topic as the dashboard and CLI show it. */
export function describe(deadTopic: string, id: string, headers: Readonly<Headers>, body: Uint8Array, timestamp: number): DeadLetter {
  const attempts = Number(headers[HEADER.deadAttempts]);
  return {
    id,
    deadTopic,
    topic: originalTopic(deadTopic, headers),
    channel: headers[HEADER.deadChannel],
    code: headers[HEADER.deadCode],
    reason: headers[HEADER.deadReason],
    attempts: Number.isFinite(attempts) ? attempts : undefined,
    at: headers[HEADER.deadAt],
    timestamp,
    headers: { ...headers },
    body: showBody(body, headers),
  };
}

function originalTopic(deadTopic: string, headers: Readonly<Headers>): string {
  return headers[HEADER.deadTopic] ?? deadTopic.replace(/\.dead$/, '');
}

/**
 * The dead letters at the head of `<topic>.dead`, given back afterwards (nacked with no delay).
 * On a broker this is a take and give back: each one's delivery attempts go up by one, and with
 * more than `limit` queued the ones shown move behind the rest. The dashboard on the embedded
 * engine peeks instead, which changes nothing.
 */
export async function listDeadLetters(transport: Transport, topic: string, options: DlqOptions = {}): Promise<DeadLetter[]> {
  const deadTopic = deadTopicOf(topic);
  const { deliveries, subscription } = await take(transport, deadTopic, options, 100);
  try {
    return deliveries.map((d) => describe(deadTopic, d.id, d.headers, d.body, d.timestamp));
  } finally {
    for (const d of deliveries) d.nack(0);
    await subscription.close();
  }
}

/**
 * Publishes the selected dead letters to their original topics, then acks them. A dead letter
 * that dies again comes back to `<topic>.dead` with the same id: a pass that meets an id it has
 * already handled stops, so "all" ends instead of looping over what keeps failing.
 */
export function replayDeadLetters(transport: Transport, topic: string, selection: Selection, options: DlqOptions = {}): Promise<DlqResult> {
  return settle(transport, topic, selection, options, async (deadTopic, chosen) => {
    const byTopic = new Map<string, { delivery: Delivery; message: OutgoingMessage }[]>();
    for (const d of chosen) {
      const target = originalTopic(deadTopic, d.headers);
      if (target === deadTopic) throw new ConveyorError('ERR_BAD_OPTIONS', `dead letter ${d.id} names no original topic to replay to`);
      let list = byTopic.get(target);
      if (!list) byTopic.set(target, (list = []));
      list.push({ delivery: d, message: { id: logicalId(d), body: d.body, headers: replayHeaders(d.headers) } });
    }
    for (const [target, items] of byTopic) {
      // Publish first, ack after the confirm: a crash in between leaves the dead letter in place
      // (a duplicate on replay, never a loss).
      await transport.publish(target, items.map((i) => i.message));
      for (const i of items) i.delivery.ack();
    }
  });
}

/** Acks (drops) the selected dead letters. */
export function purgeDeadLetters(transport: Transport, topic: string, selection: Selection, options: DlqOptions = {}): Promise<DlqResult> {
  return settle(transport, topic, selection, options, async (_deadTopic, chosen) => {
    for (const d of chosen) d.ack();
  });
}

async function settle(
  transport: Transport,
  topic: string,
  selection: Selection,
  options: DlqOptions,
  act: (deadTopic: string, chosen: Delivery[]) => Promise<void>,
): Promise<DlqResult> {
  const deadTopic = deadTopicOf(topic);
  const wanted = selection === 'all' ? undefined : new Set(selection);
  const result: DlqResult = { done: [], kept: 0, missing: [] };
  if (wanted?.size === 0) return result;
  const seen = new Set<string>();
  const found = new Set<string>();
  for (;;) {
    const { deliveries, subscription } = await take(transport, deadTopic, options, MAX_PASS);
    const chosen: Delivery[] = [];
    const others: Delivery[] = [];
    let again = false;
    for (const d of deliveries) {
      // A dead letter met again (given back, or dead again after its replay) ends the run.
      const repeat = seen.has(d.id);
      if (repeat) again = true;
      seen.add(d.id);
      const match = wanted === undefined ? d.id : matchOf(d, wanted);
      if (match !== undefined && !repeat) {
        chosen.push(d);
        found.add(match);
      } else others.push(d);
    }
    try {
      if (chosen.length > 0) await act(deadTopic, chosen);
    } catch (error) {
      for (const d of chosen) d.nack(0);
      throw error;
    } finally {
      for (const d of others) d.nack(0);
      await subscription.close();
    }
    for (const d of chosen) result.done.push(d.id);
    result.kept += others.length;
    const allFound = wanted !== undefined && found.size === wanted.size;
    if (deliveries.length === 0 || again || allFound) break;
  }
  if (wanted) result.missing = [...wanted].filter((id) => !found.has(id));
  return result;
}

function matchOf(d: Delivery, wanted: ReadonlySet<string>): string | undefined {
  if (wanted.has(d.id)) return d.id;
  const logical = d.headers[HEADER.id];
  return logical !== undefined && wanted.has(logical) ? logical : undefined;
}

function logicalId(d: Delivery): string {
  return d.headers[HEADER.id] ?? d.id;
}

/** The original's headers: the dead-letter ones dropped, its id kept (so dedup still applies). */
function replayHeaders(headers: Readonly<Headers>): Headers {
  const out: Headers = {};
  for (const [k, v] of Object.entries(headers)) if (!k.startsWith(DEAD_PREFIX)) out[k] = v;
  return out;
}

/** Subscribes to the dlq channel and holds what arrives until `limit` or `idleMs` of quiet. */
async function take(
  transport: Transport,
  deadTopic: string,
  options: DlqOptions,
  defaultLimit: number,
): Promise<{ deliveries: Delivery[]; subscription: Subscription }> {
  const limit = options.limit ?? defaultLimit;
  if (!(Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_PASS)) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `limit must be an integer from 1 to ${MAX_PASS}, got ${JSON.stringify(limit)}`);
  }
  const idleMs = options.idleMs ?? 250;
  const firstWaitMs = options.firstWaitMs ?? Math.max(1000, 4 * idleMs);
  const deliveries: Delivery[] = [];
  let last = Date.now();
  let full: (() => void) | undefined;
  const subscription = await transport.subscribe(deadTopic, options.channel ?? DLQ_CHANNEL, { maxInFlight: limit, timeoutMs: 60_000 }, (d) => {
    deliveries.push(d);
    last = Date.now();
    if (deliveries.length >= limit) full?.();
  });
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (Date.now() - last >= (deliveries.length === 0 ? firstWaitMs : idleMs)) done();
    }, Math.max(10, Math.floor(idleMs / 5)));
    const done = () => {
      clearInterval(timer);
      resolve();
    };
    full = done;
    if (deliveries.length >= limit) done();
  });
  subscription.pause();
  return { deliveries, subscription };
}
