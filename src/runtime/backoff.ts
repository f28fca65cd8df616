/** Retry delays: exponential from `initialMs`, capped at `maxMs`, with full jitter on a fraction. */
export interface BackoffOptions {
  /** First retry delay, ms. @default 100 */
  initialMs: number;
  /** Longest delay, ms. @default 30000 */
  maxMs: number;
  /** Growth per attempt. @default 2 */
  factor: number;
  /** Fraction of the delay drawn at random (0 = none, 1 = full jitter). @default 0.2 */
  jitter: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialMs: 100, maxMs: 30_000, factor: 2, jitter: 0.2 });

/**
 * Delay before retry number `attempt` (1 = the first retry). Jitter spreads retries of messages
 * that failed together, so a recovering dependency is not hit by all of them at once.
 */
export function backoffDelay(options: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(options.maxMs, options.initialMs * options.factor ** Math.max(0, attempt - 1));
  const spread = base * options.jitter;
  return Math.max(0, Math.round(base - spread + random() * spread));
}
