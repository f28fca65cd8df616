import { ConveyorError } from '../../core/errors.ts';
import type { Binding } from '../../core/transport.ts';
import { type ParsedUrl, queryBool, queryInts } from '../../core/url.ts';

export interface RedisOptions {
  /** The URL handed to ioredis, without Conveyor's own query parameters. */
  url: string;
  /** Prefix of stream keys. @default 'conveyor:' */
  prefix: string;
  /** Approximate stream length kept (XADD MAXLEN ~). Entries past it are trimmed, read or not. @default 1000000 */
  maxLen: number;
  /** Largest body, bytes. @default 8 MiB */
  maxMessageBytes: number;
  /** XREADGROUP BLOCK, ms: how long a read waits before looking again (pause, close, claims). @default 1000 */
  blockMs: number;
  /** How often due delayed retries are moved back, ms. @default 50 */
  delayPollMs: number;
  /**
   * `?envelope=false`: `#ephemeral` (Pub/Sub) payloads are bare bodies, for subscribers that know
   * nothing of Conveyor; headers are then not carried. With the default, a payload is the body in
   * the headers envelope (src/core/envelope.ts). Either way a payload without the envelope (a
   * foreign `PUBLISH`) reads as a plain body. On streams, an entry is then the field `b` alone
   * (no `h` headers, `i` id, `t` time, `a` attempts); retry entries keep them.
   * @default true
   */
  envelope: boolean;
  /**
   * `?bind.<topic>=<key>`: the topic's stream — or Pub/Sub channel, for an `#ephemeral` topic
   * (`bind.chatroom%23ephemeral=chatroom`) — is `<key>` exactly, without the prefix, as foreign
   * producers and consumers name it. Retry and delay keys stay Conveyor's own (`<prefix><topic>:…`).
   * A channel needs no binding: its consumer group is the channel's name as is.
   * @default none (`<prefix><topic>`)
   */
  topics: ReadonlyMap<string, string>;
}

const BIND = 'bind.';
const OURS = ['prefix', 'maxLen', 'maxMessageBytes', 'blockMs', 'delayPollMs', 'envelope'] as const;

export function parseRedisOptions(parsed: ParsedUrl): RedisOptions {
  const url = new URL(parsed.url.href);
  const problems: string[] = [];
  const num = queryInts(url.searchParams, problems);
  const options: RedisOptions = {
    url: '',
    prefix: url.searchParams.get('prefix') ?? 'conveyor:',
    maxLen: num('maxLen', 1_000_000),
    maxMessageBytes: num('maxMessageBytes', 8 * 1024 * 1024),
    blockMs: num('blockMs', 1000),
    delayPollMs: num('delayPollMs', 50),
    envelope: queryBool(url.searchParams, 'envelope', true, problems),
    topics: new Map(),
  };
  for (const [key, value] of url.searchParams) {
    if (key.startsWith(BIND)) {
      const topic = key.slice(BIND.length);
      // Topic and channel names never hold ':' (src/engine/names.ts).
      if (topic === '' || topic.includes(':')) problems.push(`${key}: expected bind.<topic> (a channel's consumer group is its own name; nothing to bind)`);
      else if (value === '') problems.push(`${key}: expected the stream or Pub/Sub channel name, got ""`);
      else (options.topics as Map<string, string>).set(topic, value);
    } else if (!(OURS as readonly string[]).includes(key)) problems.push(`${key}: unknown option`);
  }
  if (problems.length) throw new ConveyorError('ERR_BAD_OPTIONS', `redis://: ${problems.join('; ')}`, { details: { problems } });
  url.search = '';
  options.url = url.href;
  return options;
}

/** The stream of a topic (its Pub/Sub channel if `#ephemeral`): the bound name, else `<prefix><topic>`. */
export const streamKey = (o: RedisOptions, topic: string) => o.topics.get(topic) ?? `${o.prefix}${topic}`;
/**
 * The stream (or Pub/Sub channel) one subscription reads: its own `bind.topic`, else the URL's
 * binding, else `<prefix><topic>`. A channel binding is refused, as in the URL.
 */
export function subscriptionKey(o: RedisOptions, topic: string, channel: string, bind: Binding | undefined): string {
  const bad: string[] = [];
  if (bind?.channel !== undefined) bad.push("bind.channel: a channel's consumer group is its own name; nothing to bind");
  if (bind?.topic === '') bad.push('bind.topic: expected the stream or Pub/Sub channel name, got ""');
  if (bad.length) throw new ConveyorError('ERR_BAD_OPTIONS', `redis:// subscribe ${topic}:${channel}: ${bad.join('; ')}`, { details: { problems: bad } });
  return bind?.topic ?? streamKey(o, topic);
}
/** A channel's own stream of retries, which only its consumer group reads. */
export const retryKey = (o: RedisOptions, topic: string, channel: string) => `${o.prefix}${topic}:retry:${channel}`;
/** A channel's delayed retries: a sorted set scored by due time. */
export const delayedKey = (o: RedisOptions, topic: string, channel: string) => `${o.prefix}${topic}:delayed:${channel}`;
