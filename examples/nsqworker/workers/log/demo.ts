/**
 * `workers/<topic>/<channel>.ts`: this file is the worker of channel "demo" on topic "log" — the
 * talk's `apiview/apiview_pageview_worker.py` convention, loaded by `conveyor run` (or main.ts).
 * nsqworker's pieces, one by one:
 * - `validate_message` → a middleware that sees the raw delivery before it is decoded, and the
 *   schema in messages.ts; what fails either goes to `log.dead` with the reason (pynsq would
 *   finish it silently);
 * - the processed-ids deque → `dedup: true` (an id handled once is acked unhandled next time);
 * - "log the exception and return True" → throw: the message is retried with backoff, and
 *   dead-lettered after `attempts` deliveries.
 */
import { type Context, type Middleware, PermanentError } from 'conveyor-pipelines';
import { LogLine } from '../../messages.ts';

export const message = LogLine;

const validate: Middleware = (next) =>
  async function validateMessage(work) {
    if (work.delivery.body.length > 4096) throw new PermanentError(`a log line of ${work.delivery.body.length} bytes is too long to read`);
    return next(work);
  };

export const options = {
  concurrency: 4,
  dedup: true,
  retry: { attempts: 3, backoff: { initialMs: 50, maxMs: 500 } },
  middleware: [validate],
};

export default async function demoTask(line: string, ctx: Context): Promise<void> {
  // A stand-in for a flaky dependency: the first delivery fails, the retry succeeds.
  if (line.startsWith('flaky') && ctx.attempts === 1) throw new Error('the backend timed out');
  if (line.startsWith('boom')) throw new Error(`cannot handle ${JSON.stringify(line)}`);
  console.log(`demo: ${ctx.topic}/${ctx.channel}, message: ${line} (attempt ${ctx.attempts})`);
}
