/**
 * issue 9, item 3: `conveyor start` from an installed package. A missing package is a clear error
 * at once, a failed start exits non-zero and frees its ports, a URL without a user name is
 * handled as libpq does (and said so when PostgreSQL refuses it).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import { requireService, tempDir, uniqueName } from '../helpers/index.ts';

const { Pool } = pg;

const HIDE = join(import.meta.dirname, 'fixtures', 'hide-packages.mjs');

interface Exit {
  code: number | null;
  ms: number;
  out: string;
  err: string;
}

/** `conveyor start` in a child process; killed (and the test failed) if it outlives `limitMs`. */
function start(args: string[], env: Record<string, string> = {}, limitMs = 15_000): Promise<Exit> {
  const began = Date.now();
  const child = spawn(process.execPath, ['--import', HIDE, '--import', 'tsx', 'src/cli/main.ts', 'start', ...args], {
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (err += b));
  const killer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, ms: Date.now() - began, out, err });
    }),
  );
}

/** Three ports free right now (bound to 0, then released). */
async function freePorts(): Promise<number[]> {
  const servers = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Whether a port can be bound again: nobody holds it any more. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function addresses([gw, tcp, http]: number[]): string[] {
  return ['--gateway', `127.0.0.1:${gw}`, '--tcp', `127.0.0.1:${tcp}`, '--http', `127.0.0.1:${http}`, '--every', '60'];
}

describe('conveyor start: failures are clear, fast, and free their ports', () => {
  test('without zod and PGlite installed: names @electric-sql/pglite at once, exits non-zero', async (t) => {
    const ports = await freePorts();
    const exit = await start([...addresses(ports), '--pg-dir', join(tempDir(t), 'pg')], {
      CONVEYOR_HIDE_PACKAGES: 'zod,@electric-sql/pglite',
    });
    assert.equal(exit.code, 1, `exit code; stderr: ${exit.err}`);
    assert.ok(exit.ms < 10_000, `took ${exit.ms} ms`);
    assert.match(exit.err, /ERR_MISSING_DEPENDENCY: .*"@electric-sql\/pglite": run `npm install @electric-sql\/pglite`, or archive into a PostgreSQL server with --pg /);
    assert.doesNotMatch(exit.err, /zod/);
    for (const port of ports) assert.ok(await bindable(port), `port ${port} is still held`);
  });

  test('a gateway port in use: the broker and database already started are closed, exit non-zero', async (t) => {
    const url = await requireService(t, 'postgres');
    if (!url) return;
    // Its own schema, so the `events` table start creates is dropped with it.
    const schema = uniqueName('start_fail');
    const pg = new Pool({ connectionString: url, max: 1 });
    await pg.query(`CREATE SCHEMA ${schema}`);
    t.after(async () => {
      await pg.query(`DROP SCHEMA ${schema} CASCADE`);
      await pg.end();
    });
    const [gw, tcp, http] = await freePorts();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(gw, '127.0.0.1', () => resolve()));
    t.after(() => new Promise((r) => squatter.close(r)));
    const pgUrl = `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const exit = await start([...addresses([gw!, tcp!, http!]), '--pg', pgUrl], { CONVEYOR_HIDE_PACKAGES: 'zod' });
    assert.equal(exit.code, 1, `exit code; stderr: ${exit.err}`);
    assert.ok(exit.ms < 10_000, `took ${exit.ms} ms`);
    assert.match(exit.err, /EADDRINUSE/);
    assert.ok(await bindable(tcp!), 'the broker TCP port is still held');
    assert.ok(await bindable(http!), 'the broker HTTP port is still held');
    // The database was reached (the table exists), so the failure came after it started.
    const tables = await pg.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2', [schema, 'events']);
    assert.equal(tables.rowCount, 1);
  });

  test('--pg URL without a user name: falls back to $PGUSER as libpq does, and says so when refused', async (t) => {
    if (!(await requireService(t, 'postgres'))) return;
    const ports = await freePorts();
    const role = 'conveyor_no_such_role';
    const exit = await start([...addresses(ports), '--pg', 'postgres://127.0.0.1:5432/test'], { PGUSER: role, CONVEYOR_HIDE_PACKAGES: 'zod' });
    assert.equal(exit.code, 1, `exit code; stderr: ${exit.err}`);
    assert.ok(exit.ms < 10_000, `took ${exit.ms} ms`);
    assert.match(exit.err, new RegExp(`role "${role}" does not exist`));
    assert.match(exit.err, /the URL names no user; used \$PGUSER="conveyor_no_such_role", as libpq does/);
    assert.doesNotMatch(exit.err, /not reachable/);
    for (const port of ports) assert.ok(await bindable(port), `port ${port} is still held`);
  });
});
