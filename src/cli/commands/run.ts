/**
 * `conveyor run <file|dir>`: run the apps a module exports, or load workers by convention — the
 * nsqworker layout: `workers/<topic>/<channel>.ts` (or `.js`), each exporting a default handler
 * and optionally `message` (a definition; raw bytes without one) and `options` (consume
 * options). Runs until SIGINT/SIGTERM (graceful; a second signal forces).
 *
 * TypeScript files load through tsx's loader, registered on first need: Node 20 cannot import
 * `.ts` at all, and Node 22's type stripping skips enums, parameter properties and tsconfig paths.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger } from '../../observability/log.ts';
import { ConveyorError } from '../../core/errors.ts';
import { bytesMessage, type MessageDefinition } from '../../core/schema.ts';
import { App, app } from '../../runtime/app.ts';
import type { ConsumeOptions } from '../../runtime/options.ts';
import type { MessageHandler } from '../../runtime/types.ts';

export const summary = 'run the apps a module exports, or workers/<topic>/<channel>.ts: conveyor run <file|dir> [--url URL]';

interface WorkerModule {
  default?: MessageHandler<unknown>;
  message?: MessageDefinition<unknown>;
  options?: Omit<ConsumeOptions, 'channel'>;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { url: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help || positionals.length !== 1) {
    process.stdout.write('usage: conveyor run <file|dir> [--url URL]\n  a file: runs every App it exports\n  a dir: runs workers/<topic>/<channel>.{ts,js} (or <dir>/<topic>/<channel>) on --url (default memory://)\n');
    return values.help ? 0 : 2;
  }
  const target = resolve(positionals[0]!);
  if (!existsSync(target)) throw new ConveyorError('ERR_NOT_FOUND', `no such file or directory: ${target}`);
  const apps = statSync(target).isDirectory() ? [await workersApp(target, values.url)] : await exportedApps(target);
  process.stdout.write(`conveyor: running ${apps.length} app${apps.length === 1 ? '' : 's'} from ${target}\n`);
  const log = createLogger('run');
  for (const a of apps) {
    a.on('warning', (w) => log.warn(w.error.message, { where: w.where }));
    a.on('retry', (r) => log.debug('retry', { id: r.delivery.id, topic: r.delivery.topic, channel: r.delivery.channel, delayMs: r.delayMs, error: r.error }));
  }
  await Promise.all(apps.map((a) => a.run()));
  return 0;
}

const TYPESCRIPT = /\.[cm]?ts$/;
let typescriptLoader: Promise<void> | undefined;

/** Imports a user's module, registering tsx first when it is TypeScript. */
async function importModule(file: string): Promise<Record<string, unknown>> {
  if (TYPESCRIPT.test(file)) await (typescriptLoader ??= registerTypeScript());
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  // `export` in a file Node treats as CommonJS (no "type": "module") arrives as module.exports
  // under `default`, the real default export one level down: unwrap it.
  const exported = mod.default as Record<string, unknown> | null | undefined;
  if (typeof exported === 'object' && exported !== null && exported.__esModule === true) return exported;
  return mod;
}

async function registerTypeScript(): Promise<void> {
  // Run from our own sources (`node --import tsx src/cli/main.ts`), a loader is already in place.
  if (import.meta.url.endsWith('.ts')) return;
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
  esm.register();
  // A .ts file outside a "type": "module" package is CommonJS to Node: tsx's require hook loads it.
  cjs.register();
}

async function exportedApps(file: string): Promise<App[]> {
  const mod = await importModule(file);
  const apps = Object.values(mod).filter((v): v is App => v instanceof App);
  if (apps.length === 0) throw new ConveyorError('ERR_NOT_FOUND', `${file} exports no app() — export the App you built`);
  return apps;
}

async function workersApp(dir: string, url: string | undefined): Promise<App> {
  const root = existsSync(join(dir, 'workers')) ? join(dir, 'workers') : dir;
  const pipeline = app({ url: url ?? 'memory://' });
  let count = 0;
  for (const topic of readdirSync(root).sort()) {
    const topicDir = join(root, topic);
    if (!statSync(topicDir).isDirectory()) continue;
    for (const file of readdirSync(topicDir).sort()) {
      const match = /^(.+)\.(ts|js|mjs)$/.exec(file);
      if (!match || file.endsWith('.d.ts') || file.includes('.test.')) continue;
      const channel = match[1]!;
      const mod = (await importModule(join(topicDir, file))) as WorkerModule;
      if (typeof mod.default !== 'function') {
        throw new ConveyorError('ERR_BAD_OPTIONS', `${join(topicDir, file)}: export a default handler (value, ctx) => ...`);
      }
      const message = mod.message ?? bytesMessage(topic);
      if (message.topic !== topic) {
        throw new ConveyorError('ERR_BAD_OPTIONS', `${join(topicDir, file)}: its message's topic is "${message.topic}", its folder says "${topic}"`);
      }
      await pipeline.consume(message, { ...mod.options, channel }, mod.default);
      process.stdout.write(`conveyor: worker ${topic}/${channel}\n`);
      count++;
    }
  }
  if (count === 0) throw new ConveyorError('ERR_NOT_FOUND', `no workers found under ${root} (expected <topic>/<channel>.ts)`);
  return pipeline;
}
