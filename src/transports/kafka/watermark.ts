/**
 * Kafka acknowledges by committing one offset per partition: "everything before this is done".
 * Conveyor acks messages one by one and out of order, so a commit may only move past a
 * contiguous run of acked messages, or a crash would skip the ones still in flight below it.
 *
 * A {@link PartitionWatermark} keeps the delivered offsets of one partition in fetch order
 * (ascending, not necessarily consecutive: compaction and transaction markers leave gaps) with
 * an acked flag each. The committable offset is the first delivered offset not yet acked, or one
 * past the last delivered when all are acked — Kafka's "next offset to read".
 */
export class PartitionWatermark {
  #offsets: number[] = [];
  #acked: boolean[] = [];
  #head = 0;
  #last = -1;
  /** Highest offset committed (next to read), -1 when none yet. */
  #committed = -1;
  #pending = 0;
  /** Bumped by reset(): acks of deliveries made before it are ignored. */
  #epoch = 0;

  get epoch(): number {
    return this.#epoch;
  }

  /** Records a delivery. Offsets must ascend; a lower one means the caller seeked without reset(). */
  delivered(offset: number): void {
    if (offset <= this.#last) {
      throw new RangeError(`offset ${offset} delivered after ${this.#last}: reset() the partition before seeking back`);
    }
    this.#offsets.push(offset);
    this.#acked.push(false);
    this.#last = offset;
    this.#pending++;
  }

  /**
   * Marks `offset` done. Returns false if it is not in flight here: already acked, or delivered
   * before a reset (`epoch` is the one {@link epoch} had when it was delivered).
   */
  ack(offset: number, epoch = this.#epoch): boolean {
    if (epoch !== this.#epoch) return false;
    const i = this.#find(offset);
    if (i < 0 || this.#acked[i]) return false;
    this.#acked[i] = true;
    this.#pending--;
    // Drop the acked run at the head: the watermark moves only over contiguous acks.
    while (this.#head < this.#offsets.length && this.#acked[this.#head]) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#offsets.length) {
      this.#offsets = this.#offsets.slice(this.#head);
      this.#acked = this.#acked.slice(this.#head);
      this.#head = 0;
    }
    return true;
  }

  #find(offset: number): number {
    let lo = this.#head;
    let hi = this.#offsets.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.#offsets[mid]!;
      if (v === offset) return mid;
      if (v < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Deliveries not yet acked. */
  get inFlight(): number {
    return this.#pending;
  }

  /** Next offset to read once every earlier delivery is acked; -1 before anything was delivered. */
  get watermark(): number {
    if (this.#head < this.#offsets.length) return this.#offsets[this.#head]!;
    return this.#last + 1;
  }

  /** The offset to commit now, or undefined when the watermark has not moved since the last commit. */
  committable(): number | undefined {
    const w = this.watermark;
    return w > this.#committed && w > 0 ? w : undefined;
  }

  markCommitted(offset: number): void {
    if (offset > this.#committed) this.#committed = offset;
  }

  /**
   * Forgets every delivery in flight (partition revoked, or seeked back): their acks are then
   * ignored, and they are read again from the committed offset. The next delivery may be lower.
   */
  reset(): void {
    this.#epoch++;
    this.#offsets = [];
    this.#acked = [];
    this.#head = 0;
    this.#pending = 0;
    this.#last = this.#committed - 1;
  }
}

export interface Commit {
  topic: string;
  partition: number;
  /** Next offset to read, as Kafka clients spell it (a decimal string). */
  offset: string;
}

/** Watermarks for every partition a consumer holds. */
export class WatermarkTracker {
  #parts = new Map<string, { topic: string; partition: number; mark: PartitionWatermark }>();

  #get(topic: string, partition: number) {
    const key = `${topic}\0${partition}`;
    let p = this.#parts.get(key);
    if (!p) this.#parts.set(key, (p = { topic, partition, mark: new PartitionWatermark() }));
    return p.mark;
  }

  /** Records a delivery; returns its partition's watermark, which the delivery acks directly (with
   * the epoch it had), so that acks from before a revoke or a reset land nowhere. */
  delivered(topic: string, partition: number, offset: number): PartitionWatermark {
    const mark = this.#get(topic, partition);
    mark.delivered(offset);
    return mark;
  }

  ack(topic: string, partition: number, offset: number): boolean {
    return this.#parts.get(`${topic}\0${partition}`)?.mark.ack(offset) ?? false;
  }

  /** Total deliveries in flight over every partition. */
  get inFlight(): number {
    let n = 0;
    for (const p of this.#parts.values()) n += p.mark.inFlight;
    return n;
  }

  /** What to commit now (partitions whose watermark moved). Call {@link committed} once it is. */
  commits(): Commit[] {
    const out: Commit[] = [];
    for (const { topic, partition, mark } of this.#parts.values()) {
      const offset = mark.committable();
      if (offset !== undefined) out.push({ topic, partition, offset: String(offset) });
    }
    return out;
  }

  committed(commits: readonly Commit[]): void {
    for (const c of commits) this.#parts.get(`${c.topic}\0${c.partition}`)?.mark.markCommitted(Number(c.offset));
  }

  /**
   * A partition is revoked (rebalance): returns its last commit (the contiguous watermark) and
   * forgets it, so that un-acked deliveries are not committed and their late acks are ignored.
   */
  revoke(topic: string, partition: number): Commit | undefined {
    const key = `${topic}\0${partition}`;
    const p = this.#parts.get(key);
    if (!p) return undefined;
    this.#parts.delete(key);
    const offset = p.mark.committable();
    p.mark.reset(); // detached: deliveries made under it ack nothing now
    return offset === undefined ? undefined : { topic, partition, offset: String(offset) };
  }

  /** Forgets a partition's in-flight deliveries after a seek back on it; returns how many. */
  reset(topic: string, partition: number): number {
    const mark = this.#parts.get(`${topic}\0${partition}`)?.mark;
    if (!mark) return 0;
    const dropped = mark.inFlight;
    mark.reset();
    return dropped;
  }

  partitions(): Array<{ topic: string; partition: number }> {
    return [...this.#parts.values()].map(({ topic, partition }) => ({ topic, partition }));
  }
}
