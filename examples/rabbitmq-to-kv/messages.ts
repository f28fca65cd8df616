import { defineMessage } from 'conveyor-pipelines';
import { z } from 'zod';

/** What the producer publishes and the consumer stores: one article view. */
export const ArticleViewed = defineMessage({
  name: 'article.viewed',
  topic: process.env.TOPIC ?? 'article-views',
  schema: z.object({ articleId: z.string(), userId: z.string(), source: z.enum(['web', 'app', 'feed']) }),
});
