import { randomBytes } from 'node:crypto';

/**
 * Logical message ids: 16 lowercase hex chars, so an id fits an NSQ message id on the wire.
 * A 48-bit random prefix + a 16-bit counter; the prefix is drawn again every 65,536 ids. Unique
 * across processes with overwhelming probability, and one string concat per id — the crypto
 * call happens once per 65,536 ids, not on the hot path.
 */
let prefix = '';
let counter = 0x10000;

export function newId(): string {
  if (counter === 0x10000) {
    prefix = randomBytes(6).toString('hex');
    counter = 0;
  }
  const n = counter++;
  return prefix + (n < 0x10 ? '000' : n < 0x100 ? '00' : n < 0x1000 ? '0' : '') + n.toString(16);
}
