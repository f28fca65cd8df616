import { createRequire } from 'node:module';
import { ConveyorError } from './errors.ts';

const cache = new Map<string, Promise<unknown>>();

/**
 * Loads an optional peer dependency (a broker client) on first use. A missing package is a
 * clear ERR_MISSING_DEPENDENCY naming what to install, not a bare module-not-found.
 *
 * @example
 * const amqp = await loadOptional<typeof import('amqplib')>('amqplib', 'amqp:// transport');
 */
export function loadOptional<T>(pkg: string, feature: string): Promise<T> {
  let loaded = cache.get(pkg);
  if (!loaded) {
    loaded = import(pkg).then(
      (mod) => mod,
      (cause: unknown) => {
        cache.delete(pkg);
        const missing = (cause as { code?: string }).code === 'ERR_MODULE_NOT_FOUND';
        throw new ConveyorError(
          'ERR_MISSING_DEPENDENCY',
          missing
            ? `${feature} needs the package "${pkg}": run \`npm install ${pkg}\``
            : `${feature} could not load "${pkg}": ${(cause as Error).message}`,
          { cause, details: { package: pkg } },
        );
      },
    );
    cache.set(pkg, loaded);
  }
  return loaded as Promise<T>;
}

/** Whether a package can be resolved from here, without loading it. */
export function hasOptional(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
