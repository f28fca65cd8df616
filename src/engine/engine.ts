import { ConveyorError } from '../core/errors.ts';
import { IdGenerator } from './ids.ts';
import { assertValidName } from './names.ts';
import { type EngineOptions, type ResolvedEngineOptions, resolveEngineOptions } from './options.ts';
import { Topic, type TopicContext } from './topic.ts';
import type { TopicStats, TopologyEvent } from './types.ts';

/**
 * The embedded broker: NSQ's topics and channels in one process (see types.ts for the contract).
 * One unref'd timer per engine scans every channel for in-flight timeouts and due deferred
 * messages (nsqd's queueScanLoop), so no message ever owns a timer.
 *
 * @example
 * const engine = new Engine({ memQueueSize: 1000 });
 * const channel = engine.topic('frames').channel('detector');
 * const consumer = channel.subscribe({ deliver: (m) => consumer.finish(m.id) });
 * consumer.setReady(100);
 * engine.topic('frames').publish([{ body: new Uint8Array([1, 2, 3]) }]);
 */
export class Engine {
  readonly options: ResolvedEngineOptions;
  #topics = new Map<string, Topic>();
  #context: TopicContext;
  #timer: NodeJS.Timeout;
  #closed = false;
  #closing: Promise<void> | undefined;
  #consumerIds = 0;
  #watchers = new Set<(event: TopologyEvent) => void>();

  constructor(options: EngineOptions = {}) {
    this.options = resolveEngineOptions(options);
    this.#context = {
      options: this.options,
      ids: new IdGenerator(),
      nextConsumerId: () => ++this.#consumerIds,
      idle: (topic) => {
        if (this.#topics.get(topic.name) !== topic) return;
        // Nobody awaits this deletion: a backend that fails to delete its data is reported, not thrown.
        this.deleteTopic(topic.name).catch((err: unknown) => {
          process.emitWarning(`deleting ephemeral topic ${topic.name} failed: ${String(err)}`, 'ConveyorWarning');
        });
      },
      changed: (event) => this.#notify(event),
    };
    this.#timer = setInterval(() => this.#scan(), this.options.scanIntervalMs);
    this.#timer.unref();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Gets or creates a topic. Throws ERR_BAD_NAME for a name nsqd would refuse, ERR_CLOSED after close. */
  topic(name: string): Topic {
    const existing = this.#topics.get(name);
    if (existing !== undefined) return existing;
    assertValidName('topic', name);
    if (this.#closed) throw new ConveyorError('ERR_CLOSED', 'the engine is closed');
    const topic = new Topic(name, this.#context);
    this.#topics.set(name, topic);
    this.#notify({ topic: name, removed: false });
    return topic;
  }

  getTopic(name: string): Topic | undefined {
    return this.#topics.get(name);
  }

  topics(): Topic[] {
    return [...this.#topics.values()];
  }

  /** Deletes a topic, its channels and their data; false if there is none by that name. */
  async deleteTopic(name: string): Promise<boolean> {
    const topic = this.#topics.get(name);
    if (topic === undefined) return false;
    this.#topics.delete(name);
    const deleted = topic.delete();
    this.#notify({ topic: name, removed: true });
    await deleted;
    return true;
  }

  /** nsqd's /stats topics, in creation order. */
  stats(): TopicStats[] {
    return this.topics().map((t) => t.stats());
  }

  /**
   * Stops the scan and closes every topic and channel, keeping their data in the backends
   * (in-flight and deferred messages included, as nsqd flushes on exit). Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    clearInterval(this.#timer);
    const topics = this.topics();
    this.#topics.clear();
    this.#closing = Promise.all(topics.map((t) => t.close())).then(() => undefined);
    return this.#closing;
  }

  /**
   * Calls `listener` for every topic and channel created or deleted from now on (not for what
   * exists already: read topics() for that). Returns the function that stops it.
   */
  watch(listener: (event: TopologyEvent) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  #notify(event: TopologyEvent): void {
    for (const listener of this.#watchers) {
      // A watcher's failure is its own: the topology change has happened either way.
      try {
        listener(event);
      } catch (err) {
        process.emitWarning(`a topology watcher failed: ${String(err)}`, 'ConveyorWarning');
      }
    }
  }

  #scan(): void {
    const now = Date.now();
    for (const topic of this.#topics.values()) topic.scan(now);
  }
}
