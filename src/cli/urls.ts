/**
 * The URL checks of the commands that talk to a running system (pub, tail, stats).
 *
 * `memory://` and `embedded://` are engines inside the process that opens them: a CLI command in
 * a process of its own would publish into, tail or count an engine nobody else sees (and for
 * `embedded://`, open a data directory another process may own). The commands that talk to a
 * running system refuse them in one line that says what to use instead.
 */
import { ConveyorError } from '../core/errors.ts';
import { parseTransportUrl } from '../core/url.ts';

/** The error for `command` on an in-process scheme, or undefined when the scheme is shared. */
export function inProcessOnly(scheme: string, command: string): ConveyorError | undefined {
  if (scheme !== 'memory' && scheme !== 'embedded') return undefined;
  const serve = scheme === 'embedded' ? '`conveyor broker --data-dir DIR`' : '`conveyor broker`';
  return new ConveyorError(
    'ERR_BAD_URL',
    `${scheme}:// is per-process, so \`conveyor ${command}\` in its own process would see nothing of yours: serve it with ${serve} and use nsq://127.0.0.1:4150`,
  );
}

/**
 * Checks the URL `pub` or `tail` connects to before connecting, so the usual mistakes (the
 * HTTP API's URL, a per-process engine) are one line that names the right URL.
 */
export function checkCliUrl(url: string, command: string): void {
  if (/^https?:\/\//i.test(url)) {
    throw new ConveyorError(
      'ERR_BAD_URL',
      `\`conveyor ${command}\` connects by a transport URL such as nsq://127.0.0.1:4150, not ${url} (an HTTP API, which \`conveyor stats\` reads)`,
    );
  }
  const local = inProcessOnly(parseTransportUrl(url).scheme, command);
  if (local) throw local;
}
