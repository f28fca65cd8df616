/** Runs an example the way its README says, `node --import tsx examples/<name>/<file>.ts`, from the repo root. */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Child, spawnChild } from '../helpers/child.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Examples import `conveyor-pipelines`, which in the checkout is the package itself (its name and
 * `exports`): dist/, as `npm install`'s prepare built it. Rebuilt before they run, so that they
 * test these sources, not whatever dist/ was last built from.
 */
export function buildDist(): void {
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
}

export function runExample(file: string, args: string[] = [], env: Record<string, string> = {}): Child {
  return spawnChild(process.execPath, ['--import', 'tsx', file, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
}

/** Waits for the example to exit by itself (failing after `timeoutMs`) and returns its exit code. */
export async function exitOf(run: Child, timeoutMs = 30_000): Promise<number | string | null> {
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  try {
    return await run.done;
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once the example printed a line matching `pattern`, with the match. */
export async function printed(run: Child, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(run.out());
    if (match) return match;
    if (run.exited()) throw new Error(`exited before printing ${pattern}:\n${run.out()}\n${run.err()}`);
    if (Date.now() > until) throw new Error(`did not print ${pattern} within ${timeoutMs} ms:\n${run.out()}\n${run.err()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
