import { ConveyorError } from '../../core/errors.ts';
import { Engine } from '../../engine/engine.ts';
import type { EngineOptions } from '../../engine/options.ts';

/**
 * Named in-process brokers: every `memory://<name>` in this process shares the engine of that
 * name, so that a producer and a worker connected separately see the same topics. The engine is
 * reference counted and closed when its last transport closes; the next connect starts a fresh
 * one. `memory://` with no name always gets a private engine.
 */
interface Entry {
  engine: Engine;
  users: number;
  /** The options the engine was made with, to refuse a later connect that asks for others. */
  signature: string;
}

const named = new Map<string, Entry>();

/** The engine named `name`, made with `options` if it does not exist yet. */
export function acquireNamedEngine(name: string, options: EngineOptions): Engine {
  const signature = JSON.stringify(Object.entries(options).sort());
  const entry = named.get(name);
  if (entry !== undefined) {
    if (signature !== '[]' && signature !== entry.signature) {
      throw new ConveyorError(
        'ERR_BAD_OPTIONS',
        `memory://${name} is already running with other engine options; options apply only to the first connect`,
      );
    }
    entry.users++;
    return entry.engine;
  }
  const engine = new Engine(options);
  named.set(name, { engine, users: 1, signature });
  return engine;
}

export async function releaseNamedEngine(name: string, engine: Engine): Promise<void> {
  const entry = named.get(name);
  if (entry === undefined || entry.engine !== engine) return;
  entry.users--;
  if (entry.users > 0) return;
  named.delete(name);
  await engine.close();
}
