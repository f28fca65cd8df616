import { ConveyorError } from '../../core/errors.ts';
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
   * foreign `PUBLISH`) reads as a plain body. Stream entries keep headers in their own field.
   * @default true
   */
  envelope: boolean;
}

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
  };
  for (const key of url.searchParams.keys()) {
    if (!(OURS as readonly string[]).includes(key)) problems.push(`${key}: unknown option`);
  }
  if (problems.length) throw new ConveyorError('ERR_BAD_OPTIONS', `redis://: ${problems.join('; ')}`, { details: { problems } });
  url.search = '';
  options.url = url.href;
  return options;
}

/** The stream of a topic. */
export const streamKey = (o: RedisOptions, topic: string) => `${o.prefix}${topic}`;
/** A channel's own stream of retries, which only its consumer group reads. */
export const retryKey = (o: RedisOptions, topic: string, channel: string) => `${o.prefix}${topic}:retry:${channel}`;
/** A channel's delayed retries: a sorted set scored by due time. */
export const delayedKey = (o: RedisOptions, topic: string, channel: string) => `${o.prefix}${topic}:delayed:${channel}`;
