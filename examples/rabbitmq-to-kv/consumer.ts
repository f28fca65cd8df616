/**
 * The talk's consumer: take messages from a RabbitMQ queue and store each result in a key-value
 * store — here with an async client, in batches, acked only once stored. Per article, a map
 * (Riak's Map datatype) of a view counter, a set of readers, the last source, and a nested map of
 * counts per source; per user, their last view as a plain value (last write wins).
 *
 *   AMQP_URL=amqp://guest:guest@127.0.0.1:5672 KV_URL=redis://127.0.0.1:6379 node --import tsx consumer.ts
 */
import { app } from 'conveyor-pipelines';
import { counter, keyValueSink, map, register, set } from 'conveyor-pipelines/kv';
import { ArticleViewed } from './messages.ts';

const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const kvUrl = process.env.KV_URL ?? 'redis://127.0.0.1:6379';

const sink = keyValueSink({
  url: kvUrl,
  ...(process.env.KV_PREFIX ? { prefix: process.env.KV_PREFIX } : {}),
  ...(process.env.KV_TABLE ? { table: process.env.KV_TABLE } : {}),
});
const articles = sink.bucket('maps', 'articles');
const users = sink.bucket('default', 'users');

const pipeline = app({ url: amqpUrl });
await sink.start();
await pipeline.consumeBatch(
  ArticleViewed,
  { channel: 'kv', batch: { maxSize: 500, maxWaitMs: 50 } },
  sink.handler((view, message) => [
    articles.update(view.articleId, [
      counter('views').increment(),
      set('readers').add(view.userId),
      register('lastSource').assign(view.source),
      map('bySource').update([counter(view.source).increment()]),
    ]),
    users.put(view.userId, { articleId: view.articleId, at: message.timestamp }),
  ]),
);
console.log(`consuming ${ArticleViewed.topic} from ${new URL(amqpUrl).host} into ${sink.backend}`);
await pipeline.run(); // until SIGINT/SIGTERM: stop taking, store and ack what is in flight
await sink.close();
console.log('stopped');
