/**
 * issue 9, "Done means": the README followed as a new user would, from the repo checkout after
 * `npm install` (whose `prepare` builds dist, rebuilt here so that `npx conveyor` runs this
 * tree): `npm start`, `npm run load` against it, and `conveyor stats|tail|pub` as the README
 * shows them. Ports and the PGlite directory are passed as flags (the machine is shared; the
 * README's defaults may be taken); everything else is as written.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Child, spawnChild } from '../helpers/child.ts';
import { tempDir, uniqueName, waitFor } from '../helpers/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

async function freePort(port = 0): Promise<number | undefined> {
  const server = createServer();
  const bound = await new Promise<boolean>((r) => {
    server.once('error', () => r(false));
    server.listen(port, '127.0.0.1', () => r(true));
  });
  if (!bound) return undefined;
  const got = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return got;
}

/** A free TCP port whose successor is free too: the broker's HTTP at TCP + 1, nsqd's convention `stats` reads. */
async function freePair(): Promise<[number, number]> {
  for (;;) {
    const tcp = (await freePort())!;
    if (tcp < 65535 && (await freePort(tcp + 1))) return [tcp, tcp + 1];
  }
}

/**
 * The README's `conveyor …`: what `npx conveyor …` runs in the checkout, the package's bin
 * (dist/cli/main.js), started directly so that a kill on failure reaches it (npx does not pass
 * SIGKILL on). That npx finds it is checked once, in the test.
 */
function conveyor(args: string[]): Child {
  return spawnChild(process.execPath, ['dist/cli/main.js', ...args], { cwd: ROOT });
}

async function finished(run: Child, timeoutMs = 30_000): Promise<number | string | null> {
  const timer = setTimeout(() => {
    // A detached child leads its own process group (npm start and the pipeline under it): kill it all.
    try {
      process.kill(-run.child.pid!, 'SIGKILL');
    } catch {
      run.child.kill('SIGKILL');
    }
  }, timeoutMs);
  try {
    return await run.done;
  } finally {
    clearTimeout(timer);
  }
}

async function until(run: Child, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const match = await waitFor(() => pattern.exec(run.out()) ?? (run.exited() ? assert.fail(`exited: ${run.out()}\n${run.err()}`) : null), `${pattern}`, timeoutMs, 50);
  return match!;
}

interface NsqStats {
  topics: Array<{ topic_name: string; message_count: number; channels: Array<{ channel_name: string; client_count: number }> }>;
}

describe('the README from the repo checkout', { timeout: 240_000 }, () => {
  before(() => execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' }));

  test('npm start; npm run load reports every event archived; conveyor stats, tail and pub work against it', async (t) => {
    const gw = (await freePort())!;
    const [tcp, http] = await freePair();
    const nsq = `nsq://127.0.0.1:${tcp}`;
    const dir = tempDir(t, 'conveyor-readme-');
    // detached: its own process group, so that a Ctrl-C can go to npm and the pipeline both, as a terminal sends it.
    const start = spawnChild('npm', ['start', '--', '--gateway', `127.0.0.1:${gw}`, '--tcp', `127.0.0.1:${tcp}`, '--http', `127.0.0.1:${http}`, '--pg-dir', join(dir, 'pgdata')], {
      cwd: ROOT,
      detached: true,
    });
    t.after(async () => {
      if (!start.exited()) process.kill(-start.child.pid!, 'SIGKILL');
      await start.done;
    });
    // The four lines the README's walkthrough shows, on the ports given.
    await until(start, /bad messages go to events\.dead; read them with: (conveyor tail nsq:\/\/[0-9.:]+ events\.dead)\n/, 90_000);
    assert.match(start.out(), new RegExp(`conveyor: broker on ${nsq} \\(HTTP 127\\.0\\.0\\.1:${http}\\)\\n`));
    assert.match(start.out(), new RegExp(`conveyor: gateway on http://127\\.0\\.0\\.1:${gw} — POST http://127\\.0\\.0\\.1:${gw}/v1/topics/events`));
    assert.match(start.out(), /conveyor: archiving into embedded PostgreSQL at .*pgdata; drive it with: npm run load\n/);
    assert.ok(README.includes('conveyor tail nsq://127.0.0.1:4150 events.dead'));

    // `conveyor tail … events.dead` as start suggests, then a bad message with `conveyor pub`:
    // the dead letter tail prints carries the id pub printed, and --count 1 prints one although
    // both channels (archive, counts) dead-letter it.
    const stats = async () => (await (await fetch(`http://127.0.0.1:${http}/stats?format=json`)).json()) as NsqStats;
    const tailing = (topic: string) => async () =>
      (await stats()).topics.find((x) => x.topic_name === topic)?.channels.some((c) => c.channel_name.startsWith('tail-') && c.client_count > 0);
    const deadTail = conveyor(['tail', nsq, 'events.dead', '--count', '1']);
    await waitFor(tailing('events.dead'), 'tail subscribed to events.dead', 20_000, 100);
    const pub = spawnChild('npx', ['--no-install', 'conveyor', 'pub', nsq, 'events', '{"kind": 5}'], { cwd: ROOT });
    assert.equal(await finished(pub), 0, pub.err());
    const id = pub.out().trim();
    assert.match(id, /^[0-9a-f]{16}$/);
    assert.equal(await finished(deadTail), 0, deadTail.err());
    const lines = deadTail.out().trim().split('\n');
    assert.equal(lines.length, 1, `--count 1 printed ${lines.length}: ${deadTail.out()}`);
    const dead = JSON.parse(lines[0]!) as { id: string; headers: Record<string, string>; value: unknown };
    assert.equal(dead.id, id, 'the dead letter has the id `conveyor pub` printed');
    assert.equal(dead.headers['conveyor-dead-code'], 'ERR_SCHEMA');
    assert.match(dead.headers['conveyor-dead-reason']!, /at "kind": expected a string/);
    assert.deepEqual(dead.value, { kind: 5 });

    // `conveyor tail … events` watches the live topic while `npm run load` drives the gateway.
    const liveTail = conveyor(['tail', nsq, 'events', '--count', '3']);
    await waitFor(tailing('events'), 'tail subscribed to events', 20_000, 100);
    const load = spawnChild('npm', ['run', 'load', '--', '--url', `http://127.0.0.1:${gw}`, '--seconds', '3'], { cwd: ROOT });
    assert.equal(await finished(load, 60_000), 0, load.err());
    const [, accepted] = /load: (\d+) events accepted \(\d+\/s\), 0 refused\n/.exec(load.out()) ?? assert.fail(load.out());
    const arrived = JSON.parse(/arrived: (.*)\n/.exec(load.out())?.[1] ?? assert.fail(load.out())) as {
      messages: { events: number };
      pipeline: { archived: number; counted: number };
    };
    assert.ok(Number(accepted) > 0);
    assert.equal(arrived.messages.events, Number(accepted));
    assert.equal(arrived.pipeline.archived, Number(accepted), 'every accepted event archived');
    assert.equal(arrived.pipeline.counted, Number(accepted), 'and counted');
    assert.equal(await finished(liveTail), 0, liveTail.err());
    const live = liveTail.out().trim().split('\n').map((l) => JSON.parse(l) as { value: { kind: string; user: number } });
    assert.equal(live.length, 3);
    for (const e of live) assert.equal(typeof e.value.kind, 'string');

    // `conveyor stats nsq://…` (the URL tail takes): the table, with the clients /stats counts.
    const table = conveyor(['stats', nsq]);
    assert.equal(await finished(table), 0, table.err());
    const rows = table.out().trim().split('\n').map((r) => r.split(/\s{2,}/));
    assert.deepEqual(rows[0], ['topic', 'channel', 'depth', 'in flight', 'deferred', 'messages', 'requeued', 'timed out', 'clients']);
    const archive = rows.find((r) => r[1] === 'archive') ?? assert.fail(table.out());
    assert.equal(archive[5], String(Number(accepted) + 1), 'archive saw every event and the bad one');
    assert.equal(archive.at(-1), '1', 'one client: the pipeline');
    const events = rows.find((r) => r[0] === 'events') ?? assert.fail(table.out());
    assert.equal(events[events.length - 1], String(Number(accepted) + 1));

    // Ctrl-C: graceful, the last batch flushed.
    // npm itself gets the Ctrl-C too and may exit by it; what matters is the pipeline's own stop.
    process.kill(-start.child.pid!, 'SIGINT');
    assert.ok([0, 130, 'SIGINT'].includes((await finished(start, 30_000))!), start.err());
    assert.match(start.out(), /conveyor: stopping — finishing in-flight work and flushing the last batch\n/);
    assert.match(start.out(), new RegExp(`conveyor: stopped; archived ${accepted} events\\n`));
  });

  test("the README's worker, its imports as written, runs in the checkout and stops on Ctrl-C", async (t) => {
    const code = /```ts\n([\s\S]*?)```/.exec(README.slice(README.indexOf('## A worker in a few lines')))?.[1] ?? assert.fail('no worker example');
    const comment = '  // throw to retry with backoff; throw PermanentError to dead-letter at once\n';
    assert.ok(code.includes(comment) && code.includes("from 'conveyor-pipelines'"));
    // Inside the checkout (its .conveyor/ is ignored by git), where `conveyor-pipelines` (the package
    // itself, by its name and exports: dist/) and zod resolve.
    const dir = join(ROOT, '.conveyor', uniqueName('readme'));
    mkdirSync(dir, { recursive: true });
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'worker.ts'), `${code.replace(comment, "  console.log('handled', frame.camera);\n")}console.log('stopped');\n`);
    const worker = spawnChild(process.execPath, ['--import', 'tsx', join(dir, 'worker.ts')], { cwd: ROOT });
    t.after(() => worker.child.kill('SIGKILL'));
    await until(worker, /handled c1\n/, 30_000);
    worker.child.kill('SIGINT');
    assert.equal(await finished(worker), 0, worker.err());
    assert.match(worker.out(), /handled c1\nstopped\n$/);
  });
});
