import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConveyorError, type ErrorCode, ERROR_CODES, PermanentError } from '../../core/errors.ts';

export interface WorkerPoolOptions {
  /** The module whose export handles a value: a path, a file URL, or a package name. */
  module: string | URL;
  /** The export to call. @default 'default' */
  export?: string;
  /** Threads. @default availableParallelism() - 1, at least 1 */
  size?: number;
  /** Tasks waiting for a thread before `run` refuses with ERR_BACKPRESSURE. @default 1000 */
  maxQueue?: number;
}

interface Task {
  id: number;
  value: unknown;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  task: Task | undefined;
  ready: boolean;
}

/**
 * Runs CPU-bound or synchronous handlers on worker threads, so the event loop that feeds the
 * broker keeps moving (the seeds' `run_in_executor`). Values cross by structured clone. A
 * thread that dies is replaced and its task fails with a retryable error.
 *
 * @example
 * const pool = new WorkerPool({ module: new URL('./detect.ts', import.meta.url), size: 2 });
 * await pipeline.consume(Frame, { channel: 'detector', concurrency: 2 }, pool.handler);
 * // on shutdown, after the app: await pool.close();
 */
export class WorkerPool {
  readonly #module: string;
  readonly #export: string;
  readonly #maxQueue: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Task[] = [];
  #nextId = 0;
  #closing: Promise<void> | undefined;

  constructor(options: WorkerPoolOptions) {
    const problems: string[] = [];
    const size = options.size ?? Math.max(1, availableParallelism() - 1);
    if (!Number.isInteger(size) || size < 1) problems.push(`size: must be a positive integer, got ${options.size}`);
    const maxQueue = options.maxQueue ?? 1000;
    if (!Number.isInteger(maxQueue) || maxQueue < 0) problems.push(`maxQueue: must be an integer ≥ 0, got ${options.maxQueue}`);
    if (!options.module) problems.push('module: required');
    if (problems.length) throw new ConveyorError('ERR_BAD_OPTIONS', `WorkerPool: ${problems.join('; ')}`, { details: { problems } });
    const m = options.module;
    this.#module = m instanceof URL ? m.href : /^[./]|^[a-zA-Z]:\\/.test(m) ? pathToFileURL(m).href : m;
    this.#export = options.export ?? 'default';
    this.#maxQueue = maxQueue;
    for (let i = 0; i < size; i++) this.#slots.push(this.#spawn());
  }

  /** A consume handler: `app.consume(Msg, opts, pool.handler)`. */
  readonly handler = (value: unknown): Promise<unknown> => this.run(value);

  /** Runs the handler on a free thread; resolves with its result. */
  run<R = unknown>(value: unknown): Promise<R> {
    if (this.#closing) return Promise.reject(new ConveyorError('ERR_CLOSED', 'worker pool is closed'));
    if (this.#queue.length >= this.#maxQueue && !this.#slots.some((s) => s.ready && !s.task)) {
      return Promise.reject(new ConveyorError('ERR_BACKPRESSURE', `worker pool queue is full (${this.#maxQueue} waiting)`));
    }
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, value, resolve: resolve as (r: unknown) => void, reject });
      this.#dispatch();
    });
  }

  get pending(): number {
    return this.#queue.length + this.#slots.filter((s) => s.task).length;
  }

  #spawn(): Slot {
    const fromSource = import.meta.url.endsWith('.ts');
    const script = new URL(fromSource ? './worker.ts' : './worker.js', import.meta.url);
    const workerData = { module: this.#module, exportName: this.#export };
    // Run from TypeScript sources (tests, tsx), a thread must register the tsx loader itself
    // before loading the .ts entry: on Node 20, --import hooks do not reach a worker's entry.
    const worker = fromSource
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(script.href)}); })`, {
          eval: true,
          workerData,
        })
      : new Worker(script, { workerData });
    const slot: Slot = { worker, task: undefined, ready: false };
    worker.on('message', (message: { ready?: true; id?: number; ok?: boolean; result?: unknown; error?: RemoteError }) => {
      if (message.ready) {
        slot.ready = true;
        this.#dispatch();
        return;
      }
      const task = slot.task;
      slot.task = undefined;
      if (task && task.id === message.id) {
        if (message.ok) task.resolve(message.result);
        else task.reject(revive(message.error!));
      }
      this.#dispatch();
    });
    worker.on('error', (error) => this.#lost(slot, error));
    worker.on('exit', (code) => this.#lost(slot, new Error(`worker thread exited with code ${code}`)));
    return slot;
  }

  /** A thread died: fail its task (retryable), replace it unless closing. */
  #lost(slot: Slot, cause: Error): void {
    const index = this.#slots.indexOf(slot);
    if (index === -1) return;
    const task = slot.task;
    slot.task = undefined;
    if (task) {
      task.reject(new ConveyorError('ERR_HANDLER', `worker thread died while handling a task: ${cause.message}`, { cause, retryable: true }));
    }
    if (this.#closing) {
      this.#slots.splice(index, 1);
      return;
    }
    if (!slot.ready && !task) {
      // It died before it was ready: the module does not load. Fail what waits instead of looping.
      this.#slots.splice(index, 1);
      for (const t of this.#queue.splice(0)) t.reject(new ConveyorError('ERR_HANDLER', `worker pool module failed to load: ${cause.message}`, { cause, retryable: false }));
      if (this.#slots.length > 0) return;
    }
    this.#slots[index] = this.#spawn();
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (slot.ready && !slot.task) {
        const task = this.#queue.shift()!;
        slot.task = task;
        slot.worker.postMessage({ id: task.id, value: task.value });
      }
    }
  }

  /** Refuses new tasks, fails queued ones with ERR_CLOSED, waits for running ones, stops the threads. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const task of this.#queue.splice(0)) task.reject(new ConveyorError('ERR_CLOSED', 'worker pool closed before the task ran'));
      const running = this.#slots.filter((s) => s.task).map((s) => new Promise<void>((resolve) => {
        const check = () => (s.task ? setTimeout(check, 5) : resolve());
        check();
      }));
      await Promise.all(running);
      await Promise.all(this.#slots.map((s) => s.worker.terminate()));
    })();
    return this.#closing;
  }
}

interface RemoteError {
  name: string;
  message: string;
  stack?: string;
  code?: unknown;
  retryable?: unknown;
}

/** Errors come back as data; make them ours again so retry and dead-letter read them right. */
function revive(remote: RemoteError): Error {
  let error: Error;
  if (remote.code === 'ERR_PERMANENT') error = new PermanentError(remote.message);
  else if (typeof remote.code === 'string' && remote.code in ERROR_CODES) {
    error = new ConveyorError(remote.code as ErrorCode, remote.message, typeof remote.retryable === 'boolean' ? { retryable: remote.retryable } : {});
  } else {
    error = new Error(remote.message);
    error.name = remote.name;
  }
  if (remote.stack) error.stack = remote.stack;
  return error;
}
