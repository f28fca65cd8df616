/**
 * TopicMaker's choice between CreateTopics and auto-creating metadata, and its tolerance of a user
 * without CREATE rights, through stand-ins of kafkajs' admin and the cluster's ApiVersions answer
 * (real Kafka with ACLs does not run here; the mock cluster exercises the no-CreateTopics path live
 * in kafka.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConveyorError } from '../../src/core/errors.ts';
import { API_CREATE_TOPICS } from '../../src/transports/kafka/cluster.ts';
import { type TopicAdmin, type TopicCluster, TopicMaker } from '../../src/transports/kafka/topics.ts';

function kafkaError(type: string): Error {
  return Object.assign(new Error(type), { type });
}

function setup(opts: { createTopics: boolean; createFails?: string; existing?: string[] }) {
  const calls: string[] = [];
  const admin: TopicAdmin = {
    async createTopics({ topics }) {
      calls.push(`create ${topics[0]!.topic} ${topics[0]!.numPartitions}`);
      if (opts.createFails) throw kafkaError(opts.createFails);
      return true;
    },
    async fetchTopicMetadata({ topics }) {
      calls.push(`metadata ${topics.join(',')}`);
      const known = topics.filter((t) => opts.existing?.includes(t));
      if (known.length < topics.length) throw kafkaError('UNKNOWN_TOPIC_OR_PARTITION');
      return { topics: known.map((name) => ({ name, partitions: [{}] })) };
    },
  };
  const cluster: TopicCluster = {
    supports: (apiKey) => apiKey === API_CREATE_TOPICS && opts.createTopics,
    async autoCreate(topics) {
      calls.push(`auto ${topics.join(',')}`);
    },
  };
  return { calls, maker: new TopicMaker(admin, cluster, { partitions: 3, replicationFactor: -1, requestTimeoutMs: 1000 }) };
}

test('a broker without CreateTopics (per its ApiVersions): a metadata request creates the topic, once', async () => {
  const { calls, maker } = setup({ createTopics: false });
  await Promise.all([maker.ensure('t1'), maker.ensure('t1')]);
  await maker.ensure('t1');
  assert.deepEqual(calls, ['auto t1']);
});

test('a broker with CreateTopics: created with the options; TOPIC_ALREADY_EXISTS is fine', async () => {
  const a = setup({ createTopics: true });
  await a.maker.ensure('t1');
  assert.deepEqual(a.calls, ['create t1 3']);
  const b = setup({ createTopics: true, createFails: 'TOPIC_ALREADY_EXISTS' });
  await b.maker.ensure('t1');
  assert.deepEqual(b.calls, ['create t1 3']);
});

test('no CREATE rights: an existing topic is used; a missing one is a clear, permanent error', async () => {
  const ok = setup({ createTopics: true, createFails: 'TOPIC_AUTHORIZATION_FAILED', existing: ['t1'] });
  await ok.maker.ensure('t1');
  assert.deepEqual(ok.calls, ['create t1 3', 'metadata t1']);

  const missing = setup({ createTopics: true, createFails: 'CLUSTER_AUTHORIZATION_FAILED' });
  await assert.rejects(missing.maker.ensure('t2'), (err: ConveyorError) => {
    return err.code === 'ERR_TRANSPORT' && !err.retryable && /may not create topic t2/.test(err.message);
  });
  // Not cached: the next use asks again (someone may have created it meanwhile).
  await assert.rejects(missing.maker.ensure('t2'), { code: 'ERR_TRANSPORT' });
  assert.equal(missing.calls.filter((c) => c.startsWith('create')).length, 2);
});

test('any other failure is a retryable ERR_TRANSPORT naming the topic', async () => {
  const { maker } = setup({ createTopics: true, createFails: 'REQUEST_TIMED_OUT' });
  await assert.rejects(maker.ensure('t3'), (err: ConveyorError) => err.code === 'ERR_TRANSPORT' && err.retryable && /t3/.test(err.message));
});

test('a bound topic (bind.<topic>=) is only looked up, never created: missing, ERR_NOT_FOUND naming it', async () => {
  for (const createTopics of [true, false]) {
    const { calls, maker } = setup({ createTopics, existing: ['theirs'] });
    await maker.ensure('theirs', true);
    await assert.rejects(maker.ensure('gone', true), (err: ConveyorError) => err.code === 'ERR_NOT_FOUND' && /bound topic gone does not exist/.test(err.message));
    assert.deepEqual(calls, ['metadata theirs', 'metadata gone']);
  }
});
