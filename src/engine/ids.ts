/**
 * Message ids: 16 lower-case hex chars (an NSQ MessageID is 16 bytes of ASCII on the wire).
 * Like nsqd's GUID factory they come from a clock and a counter, not randomness: 11 hex chars of
 * a millisecond prefix, then a 5 hex char sequence. The prefix starts at the current time (and
 * past any prefix another generator in this process took), and when the sequence wraps (2^20 ids)
 * it moves to max(prefix + 1, now). So ids are unique within an engine and increasing, and an
 * engine restarted over a disk queue (whose stored messages keep their ids) starts past every id
 * the previous run handed out, unless that run averaged more than 2^20 ids per millisecond.
 */
const SEQUENCE_BITS = 20;
const SEQUENCE_LIMIT = 2 ** SEQUENCE_BITS;
const SEQUENCE_PAD = '00000';
const PREFIX_PAD = '00000000000';

/** The last prefix any generator in this process took, so two engines never share one. */
let lastPrefix = 0;

export class IdGenerator {
  #prefixMs = 0;
  #prefix = '';
  #sequence = 0;

  constructor(nowMs = Date.now()) {
    this.#take(nowMs);
  }

  next(): string {
    if (this.#sequence === SEQUENCE_LIMIT) this.#take(Date.now());
    const s = (this.#sequence++).toString(16);
    return this.#prefix + (s.length === 5 ? s : SEQUENCE_PAD.slice(s.length) + s);
  }

  #take(nowMs: number): void {
    this.#prefixMs = Math.max(Math.floor(nowMs), this.#prefixMs + 1, lastPrefix + 1);
    lastPrefix = this.#prefixMs;
    const p = this.#prefixMs.toString(16);
    this.#prefix = PREFIX_PAD.slice(p.length) + p;
    this.#sequence = 0;
  }
}
