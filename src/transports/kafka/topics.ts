/**
 * Topic creation on first use, for brokers with CreateTopics (Kafka) and without it (librdkafka's
 * mock cluster, which creates a topic on any Metadata request naming it): which one is decided
 * from the brokers' ApiVersions answer. A user without CREATE rights may still use a topic that
 * exists: an authorization failure is followed by a metadata look-up before it becomes an error.
 */
import { ConveyorError } from '../../core/errors.ts';
import { API_CREATE_TOPICS } from './cluster.ts';

/** The part of kafkajs' admin used here (a stand-in in unit tests). */
export interface TopicAdmin {
  createTopics(request: {
    waitForLeaders: boolean;
    topics: Array<{ topic: string; numPartitions: number; replicationFactor: number }>;
  }): Promise<boolean>;
  fetchTopicMetadata(request: { topics: string[] }): Promise<{ topics: Array<{ name: string; partitions: unknown[] }> }>;
}

/** The part of {@link KafkaCluster} used here. */
export interface TopicCluster {
  supports(apiKey: number): boolean;
  autoCreate(topics: string[], timeoutMs: number): Promise<void>;
}

/** kafkajs error types meaning "you may not create topics" (Kafka's error names). */
const NOT_ALLOWED = new Set(['TOPIC_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'POLICY_VIOLATION']);

export class TopicMaker {
  #admin: TopicAdmin;
  #cluster: TopicCluster;
  #partitions: number;
  #replicationFactor: number;
  #timeoutMs: number;
  #ready = new Map<string, Promise<void>>();

  constructor(admin: TopicAdmin, cluster: TopicCluster, options: { partitions: number; replicationFactor: number; requestTimeoutMs: number }) {
    this.#admin = admin;
    this.#cluster = cluster;
    this.#partitions = options.partitions;
    this.#replicationFactor = options.replicationFactor;
    this.#timeoutMs = options.requestTimeoutMs;
  }

  /**
   * Resolves once `name` exists (made here or elsewhere); once per name and transport. A bound
   * topic (`existing`) is never created, only looked up: missing, it is ERR_NOT_FOUND naming it.
   */
  ensure(name: string, existing = false): Promise<void> {
    let ready = this.#ready.get(name);
    if (!ready) {
      ready = (existing ? this.#mustExist(name) : this.#make(name)).catch((cause: unknown) => {
        this.#ready.delete(name); // the next use tries again
        if (cause instanceof ConveyorError) throw cause;
        throw new ConveyorError('ERR_TRANSPORT', `kafka:// could not create topic ${name}: ${(cause as Error).message}`, { cause, retryable: true });
      });
      this.#ready.set(name, ready);
    }
    return ready;
  }

  async #make(name: string): Promise<void> {
    if (!this.#cluster.supports(API_CREATE_TOPICS)) {
      await this.#cluster.autoCreate([name], this.#timeoutMs);
      return;
    }
    try {
      await this.#admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: name, numPartitions: this.#partitions, replicationFactor: this.#replicationFactor }],
      });
    } catch (cause) {
      const type = (cause as { type?: string })?.type;
      if (type === 'TOPIC_ALREADY_EXISTS') return;
      if (type !== undefined && NOT_ALLOWED.has(type) && (await this.#exists(name))) return;
      if (type !== undefined && NOT_ALLOWED.has(type)) {
        throw new ConveyorError('ERR_TRANSPORT', `kafka:// may not create topic ${name} (${type}) and it does not exist: create it, or grant CREATE`, {
          cause,
          retryable: false,
        });
      }
      throw cause;
    }
  }

  async #mustExist(name: string): Promise<void> {
    if (await this.#exists(name)) return;
    throw new ConveyorError('ERR_NOT_FOUND', `kafka:// bound topic ${name} does not exist (a bound topic is used as is, never created)`, {
      details: { topic: name },
    });
  }

  async #exists(name: string): Promise<boolean> {
    try {
      const { topics } = await this.#admin.fetchTopicMetadata({ topics: [name] });
      return topics.some((t) => t.name === name && t.partitions.length > 0);
    } catch {
      return false;
    }
  }
}
