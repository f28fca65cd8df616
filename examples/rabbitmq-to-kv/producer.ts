/**
 * The talk's producer: generates messages and sends them to the queue, each confirmed by RabbitMQ.
 *
 *   node --import tsx producer.ts 1000
 */
import { app } from 'conveyor-pipelines';
import { ArticleViewed } from './messages.ts';

const count = Number(process.argv[2] ?? 1000);
const pipeline = app({ url: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672' });
const sources = ['web', 'app', 'feed'] as const;
for (let i = 0; i < count; i += 100) {
  const views = Array.from({ length: Math.min(100, count - i) }, (_, j) => {
    const n = i + j;
    return { articleId: `article-${n % 10}`, userId: `user-${n % 37}`, source: sources[n % 3]! };
  });
  await pipeline.publishMany(ArticleViewed, views);
}
await pipeline.close();
console.log(`published ${count}`);
