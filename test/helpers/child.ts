import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';

export interface Child {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  /** Exit code, or the signal's name when the process was killed by it. */
  done: Promise<number | string | null>;
  exited: () => boolean;
}

/** A child process whose stdout and stderr are collected, for tests that drive a CLI or a script. */
export function spawnChild(command: string, args: string[], options: SpawnOptions = {}): Child {
  const child = spawn(command, args, options);
  let out = '';
  let err = '';
  let exited = false;
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (err += b));
  const done = new Promise<number | string | null>((resolve) =>
    child.on('close', (code, signal) => {
      exited = true;
      resolve(code ?? signal);
    }),
  );
  return { child, out: () => out, err: () => err, done, exited: () => exited };
}

/** `conveyor <args>` from the sources in a child process: its exit code and output once it ends. */
export async function cli(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; out: string; err: string }> {
  const run = spawnChild(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { timeout: timeoutMs });
  const done = await run.done;
  return { code: typeof done === 'number' ? done : null, out: run.out(), err: run.err() };
}
