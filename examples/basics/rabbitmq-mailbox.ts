/**
 * The pika "mailbox" snippets (producer.py and consumer.py) as one Conveyor file.
 *
 *   node --import tsx examples/basics/rabbitmq-mailbox.ts consume [amqp://guest:guest@127.0.0.1:5672] [mailbox]
 *   node --import tsx examples/basics/rabbitmq-mailbox.ts produce [amqp://guest:guest@127.0.0.1:5672] [mailbox]
 *
 * What changes: a publish resolves only once RabbitMQ confirmed it, and a message is acked after
 * the handler returned (pika's `auto_ack=True` acks on delivery: a crash loses it). Consumers of
 * the one channel share the messages, as pika consumers of one queue do. To talk to the pika
 * scripts themselves, bind the topic to their queue: `amqp://…?bind.mailbox=/mailbox` (docs/interop.md).
 */
import { app, bytesMessage } from 'conveyor-pipelines';
import { inputLines } from './input-lines.ts';

const [mode, url = 'amqp://guest:guest@127.0.0.1:5672', queue = 'mailbox'] = process.argv.slice(2);
const Mail = bytesMessage('mail', { topic: queue });
const mailbox = app({ url });

if (mode === 'produce') {
  // while True: message = input("Message: "); channel.basic_publish(exchange="", routing_key=QUEUE_NAME, body=...)
  for await (const line of inputLines('Message: ')) {
    await mailbox.publish(Mail, new TextEncoder().encode(line));
  }
  await mailbox.close();
} else if (mode === 'consume') {
  // channel.basic_consume(queue=QUEUE_NAME, on_message_callback=callback); channel.start_consuming()
  await mailbox.consume(Mail, { channel: 'mailbox' }, (body) => {
    console.log(`Got message: ${new TextDecoder().decode(body)}`);
  });
  console.log(`Waiting for messages in ${queue} on ${url}`);
  await mailbox.run(); // until Ctrl-C
} else {
  console.error('usage: rabbitmq-mailbox.ts consume|produce [amqp://…] [queue]');
  process.exitCode = 2;
}
