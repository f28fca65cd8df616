/**
 * Runs inside each pool thread: loads the handler module once, then answers tasks. Errors go
 * back as plain data (name, message, stack, code, retryable) since Error subclasses do not
 * survive structured clone.
 */
import { parentPort, workerData } from 'node:worker_threads';

interface Task {
  id: number;
  value: unknown;
}

const { module, exportName } = workerData as { module: string; exportName: string };
const loaded = (await import(module)) as Record<string, unknown>;
const handler = loaded[exportName];
if (typeof handler !== 'function') {
  throw new Error(`pool module ${module} has no function export "${exportName}"`);
}

parentPort!.on('message', async (task: Task) => {
  try {
    const result = await (handler as (value: unknown) => unknown)(task.value);
    parentPort!.postMessage({ id: task.id, ok: true, result });
  } catch (thrown) {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    const { code, retryable } = error as { code?: unknown; retryable?: unknown };
    parentPort!.postMessage({
      id: task.id,
      ok: false,
      error: { name: error.name, message: error.message, stack: error.stack, code, retryable },
    });
  }
});
parentPort!.postMessage({ ready: true });
