/**
 * `memory://` and `embedded://` are engines inside the process that opens them: a CLI command in
 * a process of its own would publish into, tail or count an engine nobody else sees (and for
 * `embedded://`, open a data directory another process may own). The commands that talk to a
 * running system refuse them in one line that says what to use instead.
 */
import { ConveyorError } from '../core/errors.ts';

/** The error for `command` on an in-process scheme, or undefined when the scheme is shared. */
export function inProcessOnly(scheme: string, command: string): ConveyorError | undefined {
  if (scheme !== 'memory' && scheme !== 'embedded') return undefined;
  const serve = scheme === 'embedded' ? '`conveyor broker --data-dir DIR`' : '`conveyor broker`';
  return new ConveyorError(
    'ERR_BAD_URL',
    `${scheme}:// is per-process, so \`conveyor ${command}\` in its own process would see nothing of yours: serve it with ${serve} and use nsq://127.0.0.1:4150`,
  );
}
