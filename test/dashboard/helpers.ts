/**
 * A dashboard over a real engine with a real app on it, served on port 0 and closed with the test.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { type DashboardOptions, dashboard } from '../../src/dashboard/index.ts';
import { Engine } from '../../src/engine/engine.ts';

export async function serve(t: TestContext, options: Omit<DashboardOptions, 'engine'> & { engine?: Engine }) {
  const engine = options.engine ?? new Engine();
  if (!options.engine) t.after(() => engine.close());
  const board = dashboard({ ...options, engine });
  const server: Server = createServer((req, res) => board(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    await board.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${board.prefix}`;
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${url}/api/${path}`, init);
    return { status: res.status, body: (await res.json()) as any };
  };
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    api(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { engine, board, url, api, post };
}

/** Reads server-sent events from `url` until `count` snapshots arrived. */
export async function snapshots(url: string, count: number, headers: Record<string, string> = {}): Promise<any[]> {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  if (!res.ok || !res.body) throw new Error(`events answered ${res.status}`);
  const out: any[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let at = buf.indexOf('\n\n');
    while (at >= 0) {
      const event = buf.slice(0, at);
      buf = buf.slice(at + 2);
      const data = event.split('\n').find((l) => l.startsWith('data:'));
      if (event.includes('event: snapshot') && data) out.push(JSON.parse(data.slice(5)));
      at = buf.indexOf('\n\n');
    }
    if (out.length >= count) break;
  }
  controller.abort();
  return out;
}
