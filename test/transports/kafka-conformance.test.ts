/**
 * The conformance suite for kafka://. No Kafka broker runs on the development machine, so it
 * runs only when KAFKA_URL (kafka://host:9092) is set; otherwise it is a declared skip.
 */
import { test } from 'node:test';
import { connect } from '../../src/connect.ts';
import { conformance } from '../../src/testing/conformance.ts';

const KAFKA_URL = process.env.KAFKA_URL;

if (KAFKA_URL) {
  const sep = KAFKA_URL.includes('?') ? '&' : '?';
  // Group joins and first fetches take seconds on Kafka: waits are scaled.
  conformance({ name: 'kafka', connect: () => connect(`${KAFKA_URL}${sep}commitIntervalMs=100`), timeoutScale: 4 });
} else {
  test('conformance: kafka', { skip: 'no Kafka broker: set KAFKA_URL' }, () => {});
}
