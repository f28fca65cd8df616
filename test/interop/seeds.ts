/** Runs the seeds' snippets as written (test/interop/seeds/*.py) for the seeds-*.test.ts suites. */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';

/** Text a UTF-8 decoder must get right: ASCII, Latin-1, an arrow, an emoji. */
export const text = (n: number) => `message ${n} ü → 🐇`;

/**
 * A seed snippet (test/interop/seeds/) with one substitution — every `from` becomes `to`, to give
 * a run its own queue or channel name — run by Debian's python3; killed when the test ends.
 * `from` may also be a list of [from, to] pairs (then `to` is unused), and `env` adds variables.
 */
export function runSeed(
  t: TestContext,
  file: string,
  from: string | ReadonlyArray<readonly [string, string]>,
  to = '',
  env: Record<string, string> = {},
): { child: ChildProcess; lines: string[]; exit: Promise<{ code: number | null; stderr: string }> } {
  const source = readFileSync(new URL(`./seeds/${file}`, import.meta.url), 'utf8');
  let renamed = source;
  for (const [a, b] of typeof from === 'string' ? [[from, to] as const] : from) {
    const next = renamed.replaceAll(a, b);
    assert.notEqual(next, renamed, `${file} holds ${a} as the seed does`);
    renamed = next;
  }
  // Unbuffered so the consumer's prints arrive as they happen; UTF-8 whatever the locale.
  const child = spawn('/usr/bin/python3', ['-c', renamed], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8', ...env },
  });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines: string[] = [];
  let out = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    const parts = out.split('\n');
    out = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
  return { child, lines, exit };
}
