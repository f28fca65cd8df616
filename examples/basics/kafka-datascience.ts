/**
 * The kafka-python3 snippets (producer.py and consumer.py on topic "datascience") as one file.
 *
 *   node --import tsx examples/basics/kafka-datascience.ts consume [kafka://127.0.0.1:9092] [datascience]
 *   node --import tsx examples/basics/kafka-datascience.ts produce [kafka://127.0.0.1:9092] [datascience]
 *
 * `producer.send()` returns a future nobody awaits in the snippet; `publish` here resolves once
 * the brokers acknowledged (acks=all). The consumer is a consumer group named after the channel,
 * and its offsets are committed only past messages it finished (so a crash redelivers, never skips).
 */
import { app, bytesMessage } from 'conveyor-pipelines';
import { inputLines } from './input-lines.ts';

const [mode, url = 'kafka://127.0.0.1:9092', topic = 'datascience'] = process.argv.slice(2);
const Record = bytesMessage('record', { topic });
const kafka = app({ url });

if (mode === 'produce') {
  // producer = KafkaProducer(bootstrap_servers="localhost:9092"); producer.send(topic=..., value=...)
  for await (const line of inputLines('Message: ')) {
    await kafka.publish(Record, new TextEncoder().encode(line));
  }
  await kafka.close();
} else if (mode === 'consume') {
  // consumer = KafkaConsumer("datascience"); for record in consumer: print(f"Got message: {message}")
  await kafka.consume(Record, { channel: 'printer' }, (value) => {
    console.log(`Got message: ${new TextDecoder().decode(value)}`);
  });
  console.log(`Consuming ${topic} on ${url}`);
  await kafka.run(); // until Ctrl-C
} else {
  console.error('usage: kafka-datascience.ts consume|produce [kafka://…] [topic]');
  process.exitCode = 2;
}
