/**
 * Small parsing helpers for protocol V2 command lines. A command is one line
 * `NAME[ param]*\n` (an optional `\r` before the `\n` is dropped, as nsqd does), followed, for
 * IDENTIFY, AUTH, PUB, DPUB and MPUB, by `[size i32][size bytes]`.
 */

/**
 * The longest command line accepted. nsqd reads lines with a 4 KiB bufio.Reader and drops the
 * connection when a line does not fit; we answer E_INVALID and close the same way.
 */
export const MAX_LINE = 4096;

/** Index of the `\n` ending the line that starts at `start`, or -1 when it is not (yet) there. */
export function findLineEnd(buf: Buffer, start: number, end: number): number {
  const stop = Math.min(end, start + MAX_LINE + 1);
  for (let i = start; i < stop; i++) if (buf[i] === 10) return i;
  return -1;
}

/** Splits `buf[start, stop)` on single spaces into latin1 strings (as bytes.Split(line, " ")). */
export function splitParams(buf: Buffer, start: number, stop: number): string[] {
  const params: string[] = [];
  let from = start;
  for (let i = start; i < stop; i++) {
    if (buf[i] === 32) {
      params.push(buf.toString('latin1', from, i));
      from = i + 1;
    }
  }
  params.push(buf.toString('latin1', from, stop));
  return params;
}

/**
 * nsqd's protocol.ByteToBase10: decimal digits only (so "-1" is an error, and "" is 0).
 * Returns undefined when a non-digit appears. Values past 2^53 saturate, which every range
 * check then rejects.
 */
export function parseBase10(text: string): number | undefined {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
    if (n > Number.MAX_SAFE_INTEGER) n = Number.MAX_SAFE_INTEGER;
  }
  return n;
}

/** Commands followed by a length-prefixed body. */
export function hasBody(name: string): boolean {
  return name === 'PUB' || name === 'MPUB' || name === 'DPUB' || name === 'IDENTIFY' || name === 'AUTH';
}
