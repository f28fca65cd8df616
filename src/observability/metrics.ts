/**
 * Prometheus metrics through prom-client's Registry, so that an application can merge
 * Conveyor's with its own (`Registry.merge`) or serve them from its existing `/metrics`.
 *
 * Every family is read at scrape time from counters the runtime, the engine and the gateway keep
 * anyway (plain numbers and a fixed-bucket histogram): nothing of prom-client runs per message.
 * Names follow Prometheus conventions: `_total` counters, `_seconds` histograms, base units.
 */
import { Registry } from 'prom-client';
import type { ConsumerStats } from '../runtime/consumer.ts';
import { LATENCY_BUCKETS, type LatencyHistogram } from './histogram.ts';

type Labels = Record<string, string>;
export interface Sample {
  labels: Labels;
  value: number;
}
export interface HistogramSample {
  labels: Labels;
  histogram: LatencyHistogram;
}

/** One metric family, sampled when scraped. */
export type Family =
  | { name: string; help: string; type: 'counter' | 'gauge'; read(): Sample[] }
  | { name: string; help: string; type: 'histogram'; read(): HistogramSample[] };

/** The shape prom-client's Registry serialises (what its own metrics' get() returns). */
function asPromMetric(family: Family) {
  return {
    name: family.name,
    help: family.help,
    type: family.type,
    aggregator: 'sum',
    reset() {},
    async get() {
      return { name: family.name, help: family.help, type: family.type, aggregator: 'sum', values: values(family) };
    },
  };
}

function values(family: Family): Array<{ value: number; labels: Labels; metricName?: string }> {
  if (family.type !== 'histogram') return family.read().map((s) => ({ value: s.value, labels: s.labels }));
  const out: Array<{ value: number; labels: Labels; metricName?: string }> = [];
  for (const { labels, histogram } of family.read()) {
    let cumulative = 0;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      cumulative += histogram.counts[i]!;
      out.push({ metricName: `${family.name}_bucket`, labels: { ...labels, le: String(LATENCY_BUCKETS[i]) }, value: cumulative });
    }
    out.push({ metricName: `${family.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: histogram.count });
    out.push({ metricName: `${family.name}_sum`, labels, value: histogram.sum });
    out.push({ metricName: `${family.name}_count`, labels, value: histogram.count });
  }
  return out;
}

/** Registers `families` in `registry` (a new one by default) and returns it. */
export function registryOf(families: readonly Family[], registry: Registry = new Registry()): Registry {
  for (const family of families) registry.registerMetric(asPromMetric(family) as never);
  return registry;
}

export const PROMETHEUS_CONTENT_TYPE = new Registry().contentType;

// ---- the runtime (any app) ----

/** What an App exposes for its metrics. */
export interface AppMetricsSource {
  /** Confirmed publishes per topic. */
  published(): ReadonlyMap<string, number>;
  consumers(): ReadonlyArray<ConsumerStats & { handler: LatencyHistogram }>;
}

const OUTCOMES = [
  ['processed', 'processed'],
  ['retried', 'retried'],
  ['dead', 'dead'],
  ['discarded', 'discarded'],
  ['duplicates', 'duplicate'],
] as const;

export function appFamilies(source: AppMetricsSource): Family[] {
  return [
    {
      name: 'conveyor_messages_published_total',
      help: 'Messages published and confirmed by the broker, by topic.',
      type: 'counter',
      read: () => [...source.published()].map(([topic, value]) => ({ labels: { topic }, value })),
    },
    {
      name: 'conveyor_messages_consumed_total',
      help: 'Deliveries settled by consumers, by topic, channel and outcome (processed, retried, dead, discarded, duplicate).',
      type: 'counter',
      read: () =>
        source.consumers().flatMap((c) =>
          OUTCOMES.map(([field, outcome]) => ({ labels: { topic: c.topic, channel: c.channel, outcome }, value: c[field] })),
        ),
    },
    {
      name: 'conveyor_handler_duration_seconds',
      help: 'Time a handler took per message (per batch for batch consumers), by topic and channel.',
      type: 'histogram',
      read: () => source.consumers().map((c) => ({ labels: { topic: c.topic, channel: c.channel }, histogram: c.handler })),
    },
    {
      name: 'conveyor_in_flight',
      help: 'Deliveries a consumer holds unacked (running and waiting for a handler slot), by topic and channel.',
      type: 'gauge',
      read: () => source.consumers().map((c) => ({ labels: { topic: c.topic, channel: c.channel }, value: c.running + c.waiting })),
    },
  ];
}

// ---- the broker (the embedded engine, as served by `conveyor broker`) ----

interface BrokerTopic {
  topic_name: string;
  depth: number;
  message_count: number;
  channels: ReadonlyArray<{
    channel_name: string;
    depth: number;
    in_flight_count: number;
    deferred_count: number;
    message_count: number;
    requeue_count: number;
    timeout_count: number;
    client_count: number;
  }>;
}

export function brokerFamilies(topics: () => readonly BrokerTopic[], clients: () => number): Family[] {
  const channelGauge = (name: string, help: string, pick: (c: BrokerTopic['channels'][number]) => number, type: 'gauge' | 'counter' = 'gauge'): Family => ({
    name,
    help,
    type,
    read: () => topics().flatMap((t) => t.channels.map((c) => ({ labels: { topic: t.topic_name, channel: c.channel_name }, value: pick(c) }))),
  });
  return [
    {
      name: 'conveyor_topic_messages_total',
      help: 'Messages published to a topic of the broker.',
      type: 'counter',
      read: () => topics().map((t) => ({ labels: { topic: t.topic_name }, value: t.message_count })),
    },
    {
      name: 'conveyor_topic_depth',
      help: 'Messages a topic keeps for channels that do not exist yet (or while paused).',
      type: 'gauge',
      read: () => topics().map((t) => ({ labels: { topic: t.topic_name }, value: t.depth })),
    },
    channelGauge('conveyor_depth', 'Messages waiting in a channel, memory and disk.', (c) => c.depth),
    channelGauge('conveyor_channel_in_flight', 'Messages delivered and not yet finished, by channel.', (c) => c.in_flight_count),
    channelGauge('conveyor_channel_deferred', 'Messages deferred (REQ with a delay, DPUB), by channel.', (c) => c.deferred_count),
    channelGauge('conveyor_channel_messages_total', 'Messages that reached a channel.', (c) => c.message_count, 'counter'),
    channelGauge('conveyor_channel_requeued_total', 'Messages requeued by consumers.', (c) => c.requeue_count, 'counter'),
    channelGauge('conveyor_channel_timed_out_total', 'Messages redelivered because their in-flight timeout passed.', (c) => c.timeout_count, 'counter'),
    channelGauge('conveyor_channel_consumers', 'Consumers subscribed to a channel.', (c) => c.client_count),
    { name: 'conveyor_broker_clients', help: 'TCP clients connected to the broker.', type: 'gauge', read: () => [{ labels: {}, value: clients() }] },
  ];
}
