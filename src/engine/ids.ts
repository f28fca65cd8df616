/**
 * Message ids: 16 lower-case hex chars (an NSQ MessageID is 16 bytes of ASCII on the wire).
 * Like nsqd's GUID factory they come from a counter, not randomness: 8 hex chars of epoch
 * seconds taken when the generator starts, then an 8 hex char sequence. When the sequence
 * wraps (2^32 ids) the prefix moves to max(prefix + 1, now), so ids never repeat within an
 * engine, and an engine restarted over a disk queue (whose stored messages keep their ids)
 * starts at a later prefix than any id it handed out before, unless it published more than
 * 2^32 messages per second of uptime.
 */
export class IdGenerator {
  #prefixSeconds: number;
  #prefix: string;
  #sequence = 0;

  constructor(nowMs = Date.now()) {
    this.#prefixSeconds = Math.floor(nowMs / 1000);
    this.#prefix = hex8(this.#prefixSeconds);
  }

  next(): string {
    if (this.#sequence > 0xffffffff) {
      this.#prefixSeconds = Math.max(this.#prefixSeconds + 1, Math.floor(Date.now() / 1000));
      this.#prefix = hex8(this.#prefixSeconds);
      this.#sequence = 0;
    }
    const seq = this.#sequence++;
    return this.#prefix + hex8(seq);
  }
}

const PAD = '00000000';
function hex8(n: number): string {
  const s = (n >>> 0).toString(16);
  return s.length === 8 ? s : PAD.slice(s.length) + s;
}
