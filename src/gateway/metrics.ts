/** The gateway's own counters and latency histogram, as JSON (/stats) and metric families (/metrics). */
import { LatencyHistogram } from '../observability/histogram.ts';
import type { Family } from '../observability/metrics.ts';

export class Metrics {
  readonly #byStatus = new Map<number, number>();
  readonly #byTopic = new Map<string, number>();
  readonly #latency = new LatencyHistogram();

  request(status: number, seconds: number): void {
    this.#byStatus.set(status, (this.#byStatus.get(status) ?? 0) + 1);
    this.#latency.observe(seconds);
  }

  published(topic: string, n: number): void {
    this.#byTopic.set(topic, (this.#byTopic.get(topic) ?? 0) + n);
  }

  snapshot(): { requests: Record<string, number>; messages: Record<string, number> } {
    return { requests: Object.fromEntries(this.#byStatus), messages: Object.fromEntries(this.#byTopic) };
  }

  families(concurrent: () => number): Family[] {
    return [
      {
        name: 'conveyor_gateway_requests_total',
        help: 'HTTP requests answered, by status code.',
        type: 'counter',
        read: () => [...this.#byStatus].map(([status, value]) => ({ labels: { status: String(status) }, value })),
      },
      {
        name: 'conveyor_gateway_messages_total',
        help: 'Messages the gateway published and the broker confirmed, by topic.',
        type: 'counter',
        read: () => [...this.#byTopic].map(([topic, value]) => ({ labels: { topic }, value })),
      },
      {
        name: 'conveyor_gateway_requests_in_flight',
        help: 'Requests waiting for a broker confirm.',
        type: 'gauge',
        read: () => [{ labels: {}, value: concurrent() }],
      },
      {
        name: 'conveyor_gateway_request_duration_seconds',
        help: 'Time to answer a request.',
        type: 'histogram',
        read: () => [{ labels: {}, histogram: this.#latency }],
      },
    ];
  }
}
