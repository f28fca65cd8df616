/**
 * The dashboard in headless Chromium (Debian's /usr/bin/chromium through playwright-core), served
 * by a real broker with a real app on it and messages flowing: the page shows live figures, pause
 * and replay work through the page's confirm step, and a screenshot is taken
 * (DASHBOARD_SCREENSHOT=path also keeps it there; docs/dashboard.png is one such).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { chromium, type Locator } from 'playwright-core';
import { PermanentError } from '../../src/core/errors.ts';
import { defineMessage } from '../../src/core/schema.ts';
import { dashboard, HandlerTimings } from '../../src/dashboard/index.ts';
import { Engine } from '../../src/engine/engine.ts';
import { app } from '../../src/runtime/app.ts';
import { startBroker } from '../../src/server/index.ts';
import { MemoryTransport } from '../../src/transports/memory/transport.ts';
import { tempDir, uniqueName, waitFor } from '../helpers/index.ts';

const CHROMIUM = '/usr/bin/chromium';
const text = async (l: Locator) => (await l.textContent()) ?? '';
const anything = { '~standard': { version: 1 as const, vendor: 'test', validate: (value: unknown) => ({ value }) } };

test('the page renders live figures; pause and replay work from it; a screenshot is taken', { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI === 'true') assert.fail(`${CHROMIUM} is missing (.ci/run installs Debian's chromium)`);
    t.skip(`${CHROMIUM} is not installed (apt-get install chromium)`);
    return;
  }
  const dir = tempDir(t, 'conveyor-dashboard-');
  const engine = new Engine();
  const broker = await startBroker({ engine, tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
  t.after(async () => {
    await broker.close();
    await engine.close();
  });
  const pipeline = app({ transport: new MemoryTransport(engine), deadLetterLog: false });
  t.after(() => pipeline.close());
  const timings = new HandlerTimings();
  const topic = uniqueName('frames');
  const Frame = defineMessage({ name: topic, schema: anything });
  const healed = new Set<number>();
  const handled = new Set<number>();
  await pipeline.consume(Frame, { channel: 'detector', concurrency: 4, retry: { attempts: 1 }, middleware: [timings.middleware()] }, async (f: any) => {
    if (f.n % 50 === 7 && !healed.has(f.n)) throw new PermanentError(`frame ${f.n}: no camera id`);
    handled.add(f.n);
  });
  engine.topic(topic).channel('archive');
  for (const name of ['clicks', 'detections', 'thumbnails']) engine.topic(`${topic}_${name}`).channel('store');
  const board = dashboard({ engine, clients: () => broker.clients(), apps: [pipeline], timings, prefix: '/dashboard' });
  broker.mount(board);
  t.after(() => board.close());

  let n = 0;
  const feed = setInterval(() => {
    for (let i = 0; i < 5; i++) pipeline.publish(Frame, { n: n++, camera: 'c1', score: Math.round(Math.random() * 100) / 100 }).catch(() => {});
    engine.topic(`${topic}_clicks`).publish([{ body: new TextEncoder().encode('{"kind":"click"}'), headers: { 'content-type': 'application/json' } }]);
  }, 40);
  t.after(() => clearInterval(feed));
  await waitFor(() => pipeline.stats()[0]!.dead >= 1, 'a dead letter', 20_000);

  // A new empty profile: playwright passes it to Chromium as --user-data-dir. Removed in the same
  // hook that closes the browser, after it: removing it first (while Chromium writes) failed the
  // hook, the browser was never closed, and the test process hung on its children.
  const profile = mkdtempSync(join(tmpdir(), 'conveyor-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 1000 },
  });
  t.after(async () => {
    await browser.close().catch(() => undefined);
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('requestfailed', (r) => {
    // The page reconnects a cut event stream by design (a broker restart, a proxy timeout); any
    // other failed request is a problem.
    if (!r.url().includes('/api/events')) problems.push(`failed ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('ERR_INCOMPLETE_CHUNKED_ENCODING')) problems.push(m.text());
  });
  await page.goto(`http://${broker.httpAddress}/dashboard/`);
  await page.locator('#live.on').waitFor({ timeout: 20_000 });

  // Live figures: the topic's row appears and its message count moves without a reload.
  const row = page.locator(`tr[data-key="t:${topic}"]`);
  await row.waitFor();
  const count = async () => Number((await text(row.locator('[data-fig="messages"]'))).replace(/[^0-9.]/g, ''));
  const before = await count();
  await waitFor(async () => (await count()) > before, 'the message count to move on the page', 20_000, 100);
  await waitFor(async () => !(await text(row.locator('[data-fig="rate"]'))).startsWith('0/'), 'a rate above 0/s', 20_000, 100);
  await row.locator('svg.spark polyline').waitFor({ timeout: 20_000 }); // the rate chart, once two samples exist
  const processed = page.locator('#consumers [data-fig="processed"]').first();
  const p1 = Number(await text(processed));
  await waitFor(async () => Number(await text(processed)) > p1, 'processed to move', 20_000, 100);
  assert.match(await text(page.locator('#consumers tbody tr').first()), /ms/);

  // Pause a channel through the confirm step; the engine is paused and the page says so.
  await row.locator('button[data-toggle]').click();
  const archive = page.locator(`tr[data-key="c:${topic}/archive"]`);
  await archive.waitFor();
  await archive.locator('button[data-act="pause"]').click();
  await page.locator('#confirm:not(.hidden)').waitFor();
  assert.match(await text(page.locator('#confirm-text')), new RegExp(`Pause channel ${topic}/archive`));
  await page.locator('#confirm-no').click();
  assert.equal(engine.topic(topic).channel('archive').paused, false, 'cancel changes nothing');
  await archive.locator('button[data-act="pause"]').click();
  await page.locator('#confirm-yes').click();
  await waitFor(() => engine.topic(topic).channel('archive').paused, 'the channel paused', 5000);
  await archive.locator('.badge', { hasText: 'paused' }).waitFor();
  const detector = page.locator(`tr[data-key="c:${topic}/detector"]`);
  await detector.locator('.client').first().waitFor();
  assert.match(await text(detector.locator('.client').first()), /RDY \d+/);

  // Peek at the paused channel: its next messages, decoded, none taken.
  const depthBefore = engine.topic(topic).channel('archive').stats().depth;
  await archive.locator('button[data-peek]').click();
  await page.locator('#peek:not(.hidden)').waitFor();
  assert.match(await text(page.locator('#peek-title')), new RegExp(`Next messages of ${topic}/archive`));
  assert.match(await text(page.locator('#peek-list tbody tr').first()), /"camera":"c1"/);
  assert.ok(engine.topic(topic).channel('archive').stats().depth >= depthBefore, 'peek took nothing');
  await page.locator('#peek-close').click();

  // Publish from the page, after the confirm step.
  await row.locator('button[data-act="publish"]').click();
  await page.locator('#pub-body').fill('{"n": 100001, "camera": "from-the-page"}');
  await page.locator('#pub-form button[type="submit"]').click();
  await page.locator('#confirm-yes').click();
  await page.locator('#flash', { hasText: `to ${topic}` }).waitFor({ timeout: 20_000 });
  await waitFor(() => handled.has(100001), 'the published message handled', 20_000);

  // Dead letters: pick one, replay it through the confirm step; it is handled on the original topic.
  await page.locator('#dead-topic').selectOption(topic);
  const first = page.locator('#dead-list tbody tr').first();
  await first.waitFor();
  assert.match(await text(first), /ERR_PERMANENT/);
  assert.match(await text(first), /no camera id/);
  const deadId = await first.getAttribute('data-dead');
  const letters = (await (await fetch(`http://${broker.httpAddress}/dashboard/api/dead?topic=${topic}`)).json()) as { letters: any[] };
  const letter = letters.letters.find((l: any) => l.id === deadId);
  const frameNo = letter.body.json.n as number;
  healed.add(frameNo);
  await first.locator('input.pick').check();
  await page.screenshot({ path: join(dir, 'dashboard.png'), fullPage: true });
  await page.locator('#replay-selected').click();
  await page.locator('#confirm-yes').click();
  await page.locator('#flash', { hasText: 'Replayed 1' }).waitFor({ timeout: 20_000 });
  await waitFor(() => handled.has(frameNo), `frame ${frameNo} handled after its replay`, 20_000);
  await waitFor(async () => !(await page.locator(`#dead-list tr[data-dead="${deadId}"]`).count()), 'the replayed letter gone from the list', 5000, 100);

  // 1,000 topics more: the page shows one page of them, the pager counts all, the filter finds one.
  for (let i = 0; i < 1000; i++) engine.topic(`${topic}_many_${String(i).padStart(4, '0')}`);
  await page.locator('#pager-text', { hasText: /^1005 topics · page 1 of 21$/ }).waitFor({ timeout: 20_000 });
  assert.equal(await page.locator('#topics tbody tr.topic').count(), 50);
  await page.locator('#filter').fill(`${topic}_many_0421`);
  await page.locator('#pager-text', { hasText: /^1 topics · page 1 of 1$/ }).waitFor({ timeout: 20_000 });
  assert.deepEqual(await page.locator('#topics tbody tr.topic .name').allTextContents(), [`${topic}_many_0421`]);

  // With a token, the page asks for it and goes live once it has it.
  const secure = dashboard({ engine, prefix: '/secure', auth: { token: 'letmein' } });
  broker.mount(secure);
  t.after(() => secure.close());
  const locked = await browser.newPage();
  await locked.goto(`http://${broker.httpAddress}/secure/`);
  await locked.locator('#token-box:not(.hidden)').waitFor({ timeout: 20_000 });
  await locked.locator('#token').fill('letmein');
  await locked.locator('#token-box button').click();
  await locked.locator('#live.on').waitFor({ timeout: 20_000 });
  await locked.locator(`tr[data-key="t:${topic}"]`).waitFor({ timeout: 20_000 });

  const shot = join(dir, 'dashboard.png');
  assert.ok(statSync(shot).size > 20_000, 'a screenshot of the page');
  if (process.env.DASHBOARD_SCREENSHOT) copyFileSync(shot, process.env.DASHBOARD_SCREENSHOT);
  assert.deepEqual(problems, [], 'no errors in the page');
});
