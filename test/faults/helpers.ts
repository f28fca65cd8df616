/**
 * What the fault tests share: a child `conveyor` process they can kill -9, free ports to restart
 * it on, RSS sampling, and one line of measurements per test (printed as a TAP comment).
 */
import { createServer } from 'node:net';
import { type Child, spawnChild } from '../helpers/child.ts';
import { waitFor } from '../helpers/index.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const between = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

/** A port free right now (the kernel's pick, released), so that a restarted broker keeps its address. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `conveyor <args>` from the sources, running until killed; resolves once `ready` appears on stdout. */
export async function startCli(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<Child> {
  const run = spawnChild(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: { ...process.env, ...env } });
  await waitFor(() => ready.test(run.out()) || run.exited(), `conveyor ${args[0]} to start`, 30_000, 20);
  if (run.exited()) throw new Error(`conveyor ${args.join(' ')} exited: ${run.err()}`);
  return run;
}

/** A TypeScript fixture in a child process, like startCli. */
export async function startScript(path: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<Child> {
  const run = spawnChild(process.execPath, ['--import', 'tsx', path, ...args], { env: { ...process.env, ...env } });
  await waitFor(() => ready.test(run.out()) || run.exited(), `${path} to start`, 30_000, 20);
  if (run.exited()) throw new Error(`${path} exited: ${run.err()}`);
  return run;
}

export async function kill9(run: Child): Promise<void> {
  if (run.exited()) return;
  run.child.kill('SIGKILL');
  await run.done;
}

/** Samples this process's RSS every `everyMs`; `stop()` gives the peak and the last, in MB. */
export function sampleRss(everyMs = 200): { stop(): { peakMb: number; lastMb: number; firstMb: number } } {
  const mb = () => process.memoryUsage.rss() / 2 ** 20;
  const firstMb = mb();
  let peakMb = firstMb;
  const timer = setInterval(() => {
    peakMb = Math.max(peakMb, mb());
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const lastMb = mb();
      return { peakMb: Math.max(peakMb, lastMb), lastMb, firstMb };
    },
  };
}

/** One line of what a fault test measured, in the TAP output. */
export function report(what: string, facts: Record<string, unknown>): void {
  const text = Object.entries(facts)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(1) : String(v)}`)
    .join(' ');
  console.log(`# fault ${what}: ${text}`);
}
