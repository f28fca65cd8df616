/**
 * One page of the dashboard's state: the topics the viewer's filter and page select (so 1,000
 * topics cost one page of JSON per second per viewer), totals over all of them, the runtime's
 * consumers and the dead-letter topics.
 */
import type { ConsumerStats } from '../runtime/consumer.ts';
import { DLQ_CHANNEL } from './dlq.ts';
import type { RateHistory } from './history.ts';
import type { HandlerTimings } from './timing.ts';
import type { TopicView } from './source.ts';

export const DEFAULT_PER_PAGE = 50;
export const MAX_PER_PAGE = 500;

export interface View {
  page: number;
  per: number;
  /** Topic names containing this (case-insensitive). */
  q: string;
}

export function viewOf(query: URLSearchParams): View {
  const int = (name: string, fallback: number, max: number) => {
    const n = Number(query.get(name));
    return Number.isSafeInteger(n) && n >= 1 ? Math.min(n, max) : fallback;
  };
  return { page: int('page', 1, 1e9), per: int('per', DEFAULT_PER_PAGE, MAX_PER_PAGE), q: (query.get('q') ?? '').slice(0, 200).toLowerCase() };
}

export interface SnapshotInput {
  topics: TopicView[];
  history: RateHistory;
  kind: string;
  canPeek: boolean;
  readOnly: boolean;
  consumers: ConsumerStats[];
  timings: HandlerTimings | undefined;
}

export function snapshot(input: SnapshotInput, view: View): Record<string, unknown> {
  const { topics, history } = input;
  let depth = 0;
  let inFlight = 0;
  let channels = 0;
  let rate = 0;
  const dead: { topic: string; depth: number }[] = [];
  for (const t of topics) {
    depth += t.depth;
    rate += history.rate(t.name);
    for (const c of t.channels) {
      channels++;
      depth += c.depth;
      inFlight += c.inFlight;
    }
    if (t.name.endsWith('.dead')) {
      const dlq = t.channels.find((c) => c.name === DLQ_CHANNEL);
      dead.push({ topic: t.name.slice(0, -'.dead'.length), depth: dlq ? dlq.depth + dlq.inFlight : t.channels.length === 0 ? t.depth : 0 });
    }
  }
  const matching = view.q === '' ? topics : topics.filter((t) => t.name.toLowerCase().includes(view.q));
  const sorted = [...matching].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const pages = Math.max(1, Math.ceil(sorted.length / view.per));
  const page = Math.min(view.page, pages);
  const shown = sorted.slice((page - 1) * view.per, page * view.per).map((t) => ({
    ...t,
    rate: history.rate(t.name),
    series: history.rates(t.name),
    channels: t.channels.map((c) => {
      const key = `${t.name}/${c.name}`;
      return { ...c, rate: history.rate(key), series: history.rates(key) };
    }),
  }));
  return {
    at: Date.now(),
    kind: input.kind,
    canPeek: input.canPeek,
    readOnly: input.readOnly,
    totals: { topics: topics.length, channels, depth, inFlight, rate },
    view: { page, pages, per: view.per, q: view.q, matching: sorted.length },
    topics: shown,
    consumers: input.consumers.map((c) => ({ ...c, ...input.timings?.of(c.topic, c.channel) })),
    dead: dead.sort((a, b) => (a.topic < b.topic ? -1 : 1)),
  };
}

/** The counts the history samples: each topic's and channel's message count. */
export function counts(topics: TopicView[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of topics) {
    out.set(t.name, t.messages);
    for (const c of t.channels) out.set(`${t.name}/${c.name}`, c.messages);
  }
  return out;
}
