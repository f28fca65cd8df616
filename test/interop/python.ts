/**
 * Runs test/interop/peer.py — the seeds' Python stack (cbor2, pika, redis-py, paho-mqtt) — with
 * Debian's interpreter, installing its packages with apt-get the first time when we may (root),
 * so that a fresh clone's `npm test` needs nothing done by hand.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

const PYTHON = '/usr/bin/python3';
const PACKAGES = ['python3-cbor2', 'python3-pika', 'python3-redis', 'python3-paho-mqtt'];
const SCRIPT = fileURLToPath(new URL('./peer.py', import.meta.url));

function importable(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import cbor2, pika, redis, paho.mqtt'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let ready: boolean | undefined;

/** True when the peer can run; fails the test otherwise (skips only outside CI, when opted out). */
export function requirePython(t: TestContext): boolean {
  if (ready === undefined) {
    ready = importable();
    if (!ready && process.getuid?.() === 0) {
      try {
        execFileSync('apt-get', ['install', '-y', '-q', ...PACKAGES], { stdio: 'ignore', timeout: 300_000 });
      } catch {
        // Reported below with what to install.
      }
      ready = importable();
    }
  }
  if (ready) return true;
  if ((process.env.CONVEYOR_SKIP_SERVICES ?? '').split(',').includes('python') && process.env.CI !== 'true') {
    t.skip(`${PYTHON} cannot import cbor2, pika, redis and paho.mqtt, and CONVEYOR_SKIP_SERVICES names python`);
    return false;
  }
  throw new Error(`${PYTHON} cannot import cbor2, pika, redis and paho.mqtt: apt-get install ${PACKAGES.join(' ')}`);
}

export interface Peer {
  /** Resolves when the peer printed {"ready": true} (consumers, once subscribed). */
  readonly ready: Promise<void>;
  /** Every other JSON line it printed, once it exited with status 0. */
  readonly done: Promise<Array<Record<string, any>>>;
}

/** Starts `peer.py mode config`; killed when the test ends. */
export function peer(t: TestContext, mode: string, config: Record<string, unknown>): Peer {
  const child: ChildProcess = spawn(PYTHON, [SCRIPT, mode, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  const lines: Array<Record<string, any>> = [];
  let onReady: () => void = () => {};
  let onFail: (e: Error) => void = () => {};
  const readyP = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    let nl = out.indexOf('\n');
    while (nl >= 0) {
      const line = JSON.parse(out.slice(0, nl)) as Record<string, any>;
      out = out.slice(nl + 1);
      if (line.ready) onReady();
      else lines.push(line);
      nl = out.indexOf('\n');
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const done = new Promise<Array<Record<string, any>>>((resolve, reject) => {
    child.on('exit', (code, signal) => {
      if (code === 0) return resolve(lines);
      const e = new Error(`peer.py ${mode} exited with ${code ?? signal}:\n${err}`);
      onFail(e);
      reject(e);
    });
  });
  // A consumer that dies before it is ready fails `ready` too; publishers never print it.
  readyP.catch(() => {});
  done.catch(() => {});
  return { ready: readyP, done };
}
