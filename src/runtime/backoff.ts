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

/**
 * A cheap check that a dependency is back (e.g. `SELECT 1`), polled during an outage so a held
 * batch is retried as soon as it is reachable instead of after a backoff grown to seconds.
 */
export interface OutageProbe {
  /** Time between probes, ms (from the end of one to the start of the next, so one runs at a time). */
  readonly intervalMs: number;
  /** Resolves true when the dependency answers; false (or a rejection) while it is still down. */
  ready(signal: AbortSignal): Promise<boolean>;
}

/**
 * Waits `delayMs`, or less: until `probe` says the dependency is back, or `signal` aborts.
 * Resolves 'probe' | 'elapsed' | 'aborted'. Without a probe it is a plain abortable sleep. Every
 * timer and listener it makes is removed before it resolves (retries may run for hours).
 */
export async function waitForRetry(delayMs: number, signal: AbortSignal, probe?: OutageProbe): Promise<'probe' | 'elapsed' | 'aborted'> {
  const deadline = Date.now() + delayMs;
  for (;;) {
    if (signal.aborted) return 'aborted';
    const left = deadline - Date.now();
    if (left <= 0) return 'elapsed';
    const step = probe ? Math.min(left, Math.max(1, probe.intervalMs)) : left;
    if (!(await abortableSleep(step, signal))) return 'aborted';
    if (!probe || Date.now() >= deadline) continue;
    const up = await probe.ready(signal).catch(() => false);
    if (signal.aborted) return 'aborted';
    if (up) return 'probe';
  }
}

/** Sleeps `ms`; resolves false early if `signal` aborts. Leaves no listener behind. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
