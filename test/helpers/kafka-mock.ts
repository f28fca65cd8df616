/**
 * A Kafka protocol peer for the kafka tests: KAFKA_URL when set (a real cluster), otherwise
 * librdkafka's own mock cluster (3 brokers on 127.0.0.1), carried by Debian's kcat, started once
 * per test file and stopped when the file's tests end or the process exits. kcat is only its
 * host: `-C -t keepalive -o end` keeps it alive (waiting on a topic nobody writes), and its
 * stderr names the brokers' ports.
 *
 * Without kcat the kafka cases fail (always in CI); a developer may opt out with
 * CONVEYOR_SKIP_SERVICES=kafka, and they are then skipped with that reason.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after } from 'node:test';

export const KCAT = process.env.KCAT ?? '/usr/bin/kcat';

let running: Promise<string> | undefined;
let child: ChildProcess | undefined;

function stop(): void {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
  running = undefined;
}
// Registered at load, so at the root: the mock outlives every test of the file, then stops.
after(stop);
process.once('exit', stop);

/** Why kafka cases cannot run here, or undefined when they can (or must: in CI a skip is a failure). */
export function kafkaSkipReason(): string | undefined {
  if (process.env.KAFKA_URL || existsSync(KCAT)) return undefined;
  const optedOut = (process.env.CONVEYOR_SKIP_SERVICES ?? '').split(',').includes('kafka');
  if (optedOut && process.env.CI !== 'true') return `no KAFKA_URL and no ${KCAT} (apt-get install kcat), and CONVEYOR_SKIP_SERVICES names kafka`;
  return undefined;
}

/**
 * The kafka:// URL of the cluster for this test file: KAFKA_URL, or a mock cluster started on
 * first call (later calls share it) and stopped after the file's tests.
 */
export function kafkaUrl(timeoutMs = 10_000): Promise<string> {
  if (process.env.KAFKA_URL) return Promise.resolve(process.env.KAFKA_URL);
  running ??= startMock(timeoutMs);
  return running;
}

function startMock(timeoutMs: number): Promise<string> {
  if (!existsSync(KCAT)) {
    return Promise.reject(new Error(`no KAFKA_URL and no ${KCAT}: install kcat (apt-get install kcat) for librdkafka's mock cluster`));
  }
  return new Promise((resolve, reject) => {
    const proc = spawn(KCAT, ['-b', '127.0.0.1:1', '-X', 'test.mock.num.brokers=3', '-q', '-C', '-t', 'keepalive', '-o', 'end'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = proc;
    let err = '';
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`kcat's mock cluster did not start within ${timeoutMs} ms; stderr: ${err}`));
    }, timeoutMs);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      err += chunk;
      // "Mock cluster enabled: original bootstrap.servers ... replaced with 127.0.0.1:P1,127.0.0.1:P2,..."
      const m = /Mock cluster enabled:.*replaced with ([0-9.:,]+)/.exec(err);
      if (!m) return;
      clearTimeout(timer);
      const [first, ...rest] = m[1]!.split(',');
      resolve(`kafka://${first}${rest.length ? `?brokers=${rest.join(',')}` : ''}`);
    });
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${KCAT}: ${e.message}`));
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (child === proc) child = undefined;
      reject(new Error(`kcat exited (${code ?? signal}) before its mock cluster started; stderr: ${err}`));
    });
  });
}

/** `url` with `extra` query options appended. */
export function withOptions(url: string, extra: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${extra}`;
}
