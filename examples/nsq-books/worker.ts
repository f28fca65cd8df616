/**
 * The talk's consumers (Applications B and C1/C2 on its routing slide), each channel of a topic
 * getting every message and the workers on one channel sharing them.
 */
import { type App, app } from 'conveyor-pipelines';
import { Book, Prediction } from './messages.ts';

export async function startWorkers(url: string, log: (line: string) => void = console.log): Promise<App> {
  const workers = app({ url });

  // ansq: `async for message in nsq.messages(): print(...); await message.fin()`. A handler that
  // returns is the FIN; one that throws is retried with backoff. The talk's hand-made buffer (a
  // deque a reader task fills) is maxInFlight here: at most 32 books held from NSQ (its RDY), 4
  // handled at once, so a slow handler makes NSQ wait instead of the buffer growing.
  await workers.consume(Book, { channel: 'student', maxInFlight: 32, concurrency: 4 }, async (book) => {
    log(`Book updated: ${book.title}`);
  });

  // cattr.structure(payload, Prediction): the handler gets the nested v2 value, whichever
  // version the producer wrote (the header says which; v1 is upgraded on the way in).
  await workers.consume(Prediction, { channel: 'archive', concurrency: 8 }, async (p, ctx) => {
    const { x0, y0, x1, y1 } = p.box;
    log(`prediction (written as v${ctx.headers['conveyor-version']}): box (${x0}, ${y0})-(${x1}, ${y1}) value ${p.value}`);
  });

  // `#ephemeral`: NSQ keeps no backlog for this channel and deletes it when its last reader
  // leaves, so a live view never holds messages back from the producers (the talk's answer to
  // a consumer that cannot keep up). It sees what is published while it is connected.
  await workers.consume(Prediction, { channel: 'dashboard#ephemeral', maxInFlight: 100 }, async () => {});
  return workers;
}
