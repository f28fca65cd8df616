/**
 * The talk's producer (Application A): `await nsq.pub(topic='books', message='War and Peace')`,
 * with typed messages. `publish` resolves once nsqd confirmed (its OK), so a failure is an error
 * here, never a message silently lost.
 */
import { app } from 'conveyor-pipelines';
import { Book, Prediction, PredictionV1 } from './messages.ts';

export const BOOKS = ['war and peace', 'ANNA KARENINA', 'the idiot'];

export async function produce(url: string): Promise<{ books: number; predictions: number }> {
  const producer = app({ url });
  try {
    for (const title of BOOKS) await producer.publish(Book, { title });
    // A current detector writes v2; an older one still writes v1 beside it.
    await producer.publishMany(Prediction, [
      { box: { x0: 0, y0: 0, x1: 10, y1: 20 }, value: 0.9 },
      { box: { x0: 5, y0: 5, x1: 6, y1: 7 }, value: 0.4 },
    ]);
    await producer.publishMany(PredictionV1, [
      { bbox: [1, 2, 3, 4], value: 0.75 },
      { bbox: [0, 0, 1, 1], value: 0.1 },
    ]);
    return { books: BOOKS.length, predictions: 4 };
  } finally {
    await producer.close();
  }
}
