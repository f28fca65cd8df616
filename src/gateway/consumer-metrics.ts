/**
 * The runtime's consumer counters (App.stats()) for the gateway's /stats and /metrics, when the
 * gateway publishes through an App: one source for what the CLI, the JSON and Prometheus show.
 */
import type { ConsumerStats } from '../runtime/consumer.ts';

/** Anything with the App's `stats()`. */
export interface HasConsumerStats {
  stats(): ConsumerStats[];
}

export function hasConsumerStats(source: unknown): source is HasConsumerStats {
  return typeof (source as { stats?: unknown }).stats === 'function' && !('features' in (source as object));
}

const COUNTERS = [
  ['processed', 'Messages handled and acked.'],
  ['retried', 'Handler failures sent back for another try.'],
  ['dead', 'Messages given up on and published to the dead-letter topic (<topic>.dead).'],
  ['discarded', 'Messages out of attempts with dead-lettering off, acked and reported.'],
  ['duplicates', 'Deliveries skipped as already processed.'],
] as const;

const label = (s: string) => s.replace(/["\\\n]/g, '_');

/** Prometheus text: one counter family per ConsumerStats counter, labelled by topic and channel. */
export function consumerPrometheus(stats: readonly ConsumerStats[]): string {
  const lines: string[] = [];
  for (const [name, help] of COUNTERS) {
    lines.push(`# HELP conveyor_consumer_${name}_total ${help}`, `# TYPE conveyor_consumer_${name}_total counter`);
    for (const c of stats) lines.push(`conveyor_consumer_${name}_total{topic="${label(c.topic)}",channel="${label(c.channel)}"} ${c[name]}`);
  }
  return `${lines.join('\n')}\n`;
}
