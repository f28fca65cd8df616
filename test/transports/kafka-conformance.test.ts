/**
 * The conformance suite for kafka://, against KAFKA_URL when set, otherwise against librdkafka's
 * mock cluster (test/helpers/kafka-mock.ts), so that it runs in every `npm test`.
 */
import { test } from 'node:test';
import { connect } from '../../src/connect.ts';
import { conformance } from '../../src/testing/conformance.ts';
import { kafkaSkipReason, kafkaUrl, withOptions } from '../helpers/kafka-mock.ts';

const skip = kafkaSkipReason();
if (skip) {
  test('conformance: kafka', { skip }, () => {});
} else {
  // Group joins and first fetches take seconds on Kafka (about 3 s on the mock): waits are scaled.
  // A short session: after a member leaves, the mock cluster waits up to the session timeout
  // before it completes the next join (30 s at the default).
  const options = 'commitIntervalMs=100&sessionTimeoutMs=3000&heartbeatIntervalMs=500';
  conformance({ name: 'kafka', connect: async () => connect(withOptions(await kafkaUrl(), options)), timeoutScale: 4 });
}
