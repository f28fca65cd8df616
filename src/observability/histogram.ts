/**
 * A fixed-bucket latency histogram, cheap enough for every message (one comparison walk over 14
 * bounds, no allocation): Prometheus reads its buckets, the dashboard and stats() its quantiles.
 */

/** Upper bounds in seconds: 0.5 ms to 10 s, roughly ×2.5 apart (prom-client's defaults, widened down). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export class LatencyHistogram {
  /** counts[i]: observations ≤ LATENCY_BUCKETS[i] and > the bound before; the last slot is > 10 s. */
  readonly counts = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  count = 0;
  sum = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += seconds;
  }

  /**
   * The q-quantile in seconds, interpolated linearly inside its bucket as Prometheus'
   * histogram_quantile does; 0 with no observations. Past the last bound it answers that bound.
   */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = q * this.count;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const inBucket = this.counts[i]!;
      if (seen + inBucket >= rank && inBucket > 0) {
        if (i === LATENCY_BUCKETS.length) return LATENCY_BUCKETS[i - 1]!;
        const lower = i === 0 ? 0 : LATENCY_BUCKETS[i - 1]!;
        const upper = LATENCY_BUCKETS[i]!;
        return lower + ((upper - lower) * (rank - seen)) / inBucket;
      }
      seen += inBucket;
    }
    return LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1]!;
  }
}
