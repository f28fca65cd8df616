/**
 * Message rates over the last minute: one sample of each topic's and channel's message count per
 * second, the last 61 kept, so a rate is a difference and no hot path counts anything
 * more than it already does. Sampling runs only while the dashboard is in use.
 */
export const HISTORY_SECONDS = 60;

class Series {
  /** Counts, oldest first, at most HISTORY_SECONDS + 1 of them, with when each was read. */
  readonly counts: number[] = [];
  readonly times: number[] = [];
  last = 0;

  push(count: number, at: number, tick: number): void {
    this.counts.push(count);
    this.times.push(at);
    if (this.counts.length > HISTORY_SECONDS + 1) {
      this.counts.shift();
      this.times.shift();
    }
    this.last = tick;
  }

  /** Messages per second between samples, oldest first (up to 60 values; fewer just after start). */
  rates(): number[] {
    const c = this.counts;
    const out: number[] = [];
    for (let i = 1; i < c.length; i++) {
      const seconds = Math.max(0.001, (this.times[i]! - this.times[i - 1]!) / 1000);
      // A count that went down (a topic deleted and made again) is a fresh start, not a negative rate.
      out.push(Math.max(0, c[i]! - c[i - 1]!) / seconds);
    }
    return out;
  }
}

export class RateHistory {
  #series = new Map<string, Series>();
  #tick = 0;

  /** One sample: `counts` maps a key (topic, or topic/channel) to its message count so far. */
  sample(counts: Map<string, number>, at = Date.now()): void {
    this.#tick++;
    for (const [key, count] of counts) {
      let s = this.#series.get(key);
      if (!s) this.#series.set(key, (s = new Series()));
      s.push(count, at, this.#tick);
    }
    // Forget what is gone (a deleted topic), so 1,000 short-lived topics do not pile up.
    for (const [key, s] of this.#series) if (s.last !== this.#tick) this.#series.delete(key);
  }

  /** Rates per second over the last minute for `key`, oldest first. */
  rates(key: string): number[] {
    return this.#series.get(key)?.rates() ?? [];
  }

  /** The latest rate (messages in the last second). */
  rate(key: string): number {
    const r = this.rates(key);
    return r.length === 0 ? 0 : r[r.length - 1]!;
  }
}
