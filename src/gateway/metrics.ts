/** Counters and a latency histogram for the gateway, rendered as JSON or Prometheus text. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class Metrics {
  readonly #byStatus = new Map<number, number>();
  readonly #byTopic = new Map<string, number>();
  readonly #buckets = new Array<number>(BUCKETS.length).fill(0);
  #count = 0;
  #sum = 0;

  request(status: number, seconds: number): void {
    this.#byStatus.set(status, (this.#byStatus.get(status) ?? 0) + 1);
    this.#count++;
    this.#sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.#buckets[i]!++;
  }

  published(topic: string, n: number): void {
    this.#byTopic.set(topic, (this.#byTopic.get(topic) ?? 0) + n);
  }

  snapshot(): { requests: Record<string, number>; messages: Record<string, number> } {
    return { requests: Object.fromEntries(this.#byStatus), messages: Object.fromEntries(this.#byTopic) };
  }

  prometheus(concurrent: number): string {
    const lines = [
      '# HELP conveyor_gateway_requests_total HTTP requests answered, by status code.',
      '# TYPE conveyor_gateway_requests_total counter',
      ...[...this.#byStatus].map(([s, n]) => `conveyor_gateway_requests_total{status="${s}"} ${n}`),
      '# HELP conveyor_gateway_messages_total Messages published and confirmed, by topic.',
      '# TYPE conveyor_gateway_messages_total counter',
      ...[...this.#byTopic].map(([t, n]) => `conveyor_gateway_messages_total{topic="${t.replace(/["\\\n]/g, '_')}"} ${n}`),
      '# HELP conveyor_gateway_requests_in_flight Requests waiting for a broker confirm.',
      '# TYPE conveyor_gateway_requests_in_flight gauge',
      `conveyor_gateway_requests_in_flight ${concurrent}`,
      '# HELP conveyor_gateway_request_duration_seconds Time to answer a request.',
      '# TYPE conveyor_gateway_request_duration_seconds histogram',
      ...BUCKETS.map((b, i) => `conveyor_gateway_request_duration_seconds_bucket{le="${b}"} ${this.#buckets[i]}`),
      `conveyor_gateway_request_duration_seconds_bucket{le="+Inf"} ${this.#count}`,
      `conveyor_gateway_request_duration_seconds_sum ${this.#sum}`,
      `conveyor_gateway_request_duration_seconds_count ${this.#count}`,
    ];
    return `${lines.join('\n')}\n`;
  }
}
