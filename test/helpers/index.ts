/**
 * Test helpers shared by every suite: unique names, temp dirs cleaned up where they are made,
 * and the real services of this machine. A missing service is a failure (always in CI); a
 * developer without one may opt out by naming it in CONVEYOR_SKIP_SERVICES, and the skip then
 * says so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

let counter = 0;
/** A topic/channel name unique to this process and call (NSQ-valid: [.a-zA-Z0-9_-]). */
export function uniqueName(prefix = 't'): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`;
}

/** A fresh temp dir removed when the test ends. */
export function tempDir(t: TestContext, prefix = 'conveyor-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // Retries: a child (Chromium, a broker) may still be writing into it for a moment after it exits.
  t.after(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }));
  return dir;
}

export const SERVICES = {
  postgres: { host: '127.0.0.1', port: 5432, url: 'postgres://postgres@127.0.0.1:5432/test' },
  redis: { host: '127.0.0.1', port: 6379, url: 'redis://127.0.0.1:6379' },
  rabbitmq: { host: '127.0.0.1', port: 5672, url: 'amqp://guest:guest@127.0.0.1:5672' },
  nats: { host: '127.0.0.1', port: 4222, url: 'nats://127.0.0.1:4222' },
  mqtt: { host: '127.0.0.1', port: 1883, url: 'mqtt://127.0.0.1:1883' },
  mariadb: { host: '127.0.0.1', port: 3306, url: 'mysql://root@127.0.0.1:3306/test' },
} as const;
export type ServiceName = keyof typeof SERVICES;

function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Returns the service's URL, or fails the test if it is down. Outside CI, a service named in
 * CONVEYOR_SKIP_SERVICES (comma-separated) is skipped with the reason instead.
 */
export async function requireService(t: TestContext, name: ServiceName): Promise<string | undefined> {
  const svc = SERVICES[name];
  if (await reachable(svc.host, svc.port)) return svc.url;
  const optedOut = (process.env.CONVEYOR_SKIP_SERVICES ?? '').split(',').includes(name);
  if (optedOut && process.env.CI !== 'true') {
    t.skip(`${name} is not running on ${svc.host}:${svc.port} and CONVEYOR_SKIP_SERVICES names it`);
    return undefined;
  }
  throw new Error(
    `${name} is not reachable on ${svc.host}:${svc.port}; start it (see docs/development.md) — tests need the real service`,
  );
}

/** Polls `check` until it returns truthy or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 5000, everyMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
