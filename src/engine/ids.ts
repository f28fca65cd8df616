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
const PREFIX_PAD = '00000000000';
/** Char codes of '0'..'9', 'a'..'f'. */
const HEX = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/** The last prefix any generator in this process took, so two engines never share one. */
let lastPrefix = 0;

export class IdGenerator {
  #prefixMs = 0;
  /** Char codes of the 11 prefix digits. */
  #p: number[] = [];
  #sequence = 0;

  constructor(nowMs = Date.now()) {
    this.#take(nowMs);
  }

  /**
   * Built from char codes in one call: concatenating prefix and sequence made a cons string that
   * V8 flattens (a copy) the first time a char is read, which every delivery does to write the id
   * into its frame (measured: 0.7 us per id with concatenation, 0.2 us like this).
   */
  next(): string {
    if (this.#sequence === SEQUENCE_LIMIT) this.#take(Date.now());
    const s = this.#sequence++;
    const p = this.#p;
    return String.fromCharCode(
      p[0]!, p[1]!, p[2]!, p[3]!, p[4]!, p[5]!, p[6]!, p[7]!, p[8]!, p[9]!, p[10]!,
      HEX[(s >>> 16) & 15]!, HEX[(s >>> 12) & 15]!, HEX[(s >>> 8) & 15]!, HEX[(s >>> 4) & 15]!, HEX[s & 15]!,
    );
  }

  #take(nowMs: number): void {
    this.#prefixMs = Math.max(Math.floor(nowMs), this.#prefixMs + 1, lastPrefix + 1);
    lastPrefix = this.#prefixMs;
    const p = this.#prefixMs.toString(16);
    this.#p = Array.from((PREFIX_PAD + p).slice(-11), (c) => c.charCodeAt(0));
    this.#sequence = 0;
  }
}
