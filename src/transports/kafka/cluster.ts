/**
 * The three things kafka:// needs that kafkajs' public API does not offer, from kafkajs' own
 * Cluster object (the one its admin and producer use, made through the Kafka instance's private
 * `createCluster`; kafkajs 2.2.x, whose last release was in 2023, so this surface is frozen):
 *
 * - the brokers' ApiVersions answer (`brokerPool.versions`), to decide whether CreateTopics
 *   exists (librdkafka's mock cluster has none; real Kafka does) — decided from what the broker
 *   says, never from a flag;
 * - a Metadata request that auto-creates topics (kafkajs' admin always sends
 *   allow_auto_topic_creation=false), the fallback when CreateTopics does not exist;
 * - a "simple" OffsetCommit (generation -1, no member) to fix a new channel's start before any
 *   member joins (kafkajs' admin.setOffsets joins the group itself, ~3 s, and needs DescribeGroups).
 *
 * If a kafkajs release ever changes this surface, connect fails with a clear ERR_TRANSPORT here
 * rather than misbehaving later.
 */
import type { Kafka } from 'kafkajs';
import { ConveyorError } from '../../core/errors.ts';

/** Kafka's API key of CreateTopics (the protocol's, not kafkajs'). */
export const API_CREATE_TOPICS = 19;

interface InternalBroker {
  offsetCommit(request: {
    groupId: string;
    groupGenerationId: number;
    memberId: string;
    topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>;
  }): Promise<{ responses: Array<{ partitions: Array<{ errorCode: number }> }> }>;
}

interface InternalCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  brokerPool: { versions: Record<number, { minVersion: number; maxVersion: number }> | null };
  addMultipleTargetTopics(topics: string[]): Promise<void>;
  refreshMetadata(): Promise<void>;
  findTopicPartitionMetadata(topic: string): Array<{ partitionId: number; leader: number }>;
  findGroupCoordinator(request: { groupId: string }): Promise<InternalBroker>;
}

type CreateCluster = (options: { allowAutoTopicCreation: boolean }) => InternalCluster;

export class KafkaCluster {
  #cluster: InternalCluster;

  private constructor(cluster: InternalCluster) {
    this.#cluster = cluster;
  }

  /** Connects kafkajs' own cluster client (its seed broker answers ApiVersions on connect). */
  static async connect(kafka: Kafka): Promise<KafkaCluster> {
    const key = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
    const create = key === undefined ? undefined : ((kafka as unknown as Record<symbol, unknown>)[key] as CreateCluster | undefined);
    if (typeof create !== 'function') {
      throw new ConveyorError('ERR_TRANSPORT', 'kafka:// needs kafkajs 2.2.x (its internal cluster client was not found in this kafkajs)');
    }
    const cluster = create({ allowAutoTopicCreation: true });
    await cluster.connect();
    return new KafkaCluster(cluster);
  }

  /** Whether the brokers implement `apiKey`, from their ApiVersions answer. */
  supports(apiKey: number): boolean {
    const v = this.#cluster.brokerPool.versions?.[apiKey];
    return v !== undefined && v.maxVersion != null && v.maxVersion >= 0;
  }

  /**
   * Creates topics the way brokers without CreateTopics do: a Metadata request naming them, with
   * allow_auto_topic_creation. Resolves once every topic has partitions with leaders.
   */
  async autoCreate(topics: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.#cluster.addMultipleTargetTopics(topics);
    for (;;) {
      const missing = topics.filter((t) => {
        const parts = this.#cluster.findTopicPartitionMetadata(t);
        return parts.length === 0 || parts.some((p) => p.leader < 0);
      });
      if (missing.length === 0) return;
      if (Date.now() > deadline) throw new Error(`topics ${missing.join(', ')} have no leaders after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
      await this.#cluster.refreshMetadata();
    }
  }

  /** Commits offsets for a group with no members (a simple commit: generation -1). */
  async commit(groupId: string, topic: string, partitions: Array<{ partition: number; offset: string }>): Promise<void> {
    const coordinator = await this.#cluster.findGroupCoordinator({ groupId });
    const res = await coordinator.offsetCommit({ groupId, groupGenerationId: -1, memberId: '', topics: [{ topic, partitions }] });
    const failed = res.responses.flatMap((r) => r.partitions).find((p) => p.errorCode !== 0);
    if (failed) throw new Error(`offset commit for group ${groupId} failed with Kafka error code ${failed.errorCode}`);
  }

  disconnect(): Promise<void> {
    return this.#cluster.disconnect();
  }
}
