/**
 * `conveyor broker`: the embedded broker served over NSQ's TCP protocol and HTTP API, like
 * running nsqd. Runs until SIGINT or SIGTERM, then closes gracefully (clients flushed, engine
 * closed, the disk queue synced).
 */
import { parseArgs } from 'node:util';
import { ConveyorError } from '../../core/errors.ts';
import type { RestorableEngine } from '../../engine/disk/index.ts';
import type { BackendFactory } from '../../engine/types.ts';
import { type BrokerOptions, startBroker } from '../../server/index.ts';

export const summary = 'serve the embedded broker over NSQ TCP and HTTP';

/** Relative to the working directory, as nsqd's --data-path; `.conveyor/` is where npm start keeps its data too. */
export const DEFAULT_DATA_DIR = './.conveyor/broker';

const USAGE = `usage: conveyor broker [options]

  --tcp HOST:PORT          NSQ TCP protocol address (default 127.0.0.1:4150)
  --http HOST:PORT         HTTP API address (default 127.0.0.1:4151)
  --data-dir DIR           keep messages past the memory queue on disk in DIR
                           (default ./.conveyor/broker, as nsqd uses its working directory)
  --memory                 no disk: what is past the memory queue stays in memory too
  --mem-queue-size N       messages kept in memory per topic and channel (default 10000)
  --durable                confirm a publish only once it is on disk (fsync)
  --max-msg-size BYTES     largest message (default 1048576)
  --max-body-size BYTES    largest MPUB / IDENTIFY / HTTP mpub body (default 5242880)
  --max-rdy-count N        largest RDY a client may ask for (default 2500)
  --msg-timeout MS         in-flight timeout unless the client negotiates one (default 60000)
  --max-msg-timeout MS     largest msg_timeout a client may negotiate (default 900000)
  --max-req-timeout MS     largest REQ / DPUB delay (default 3600000)
  --max-connections N      open TCP connections at once; more are closed at accept (default 10000)
  -h, --help               this text
`;

const NUMERIC = {
  'mem-queue-size': 'memQueueSize',
  'max-msg-size': 'maxMsgSize',
  'max-body-size': 'maxBodySize',
  'max-rdy-count': 'maxRdyCount',
  'msg-timeout': 'msgTimeoutMs',
  'max-msg-timeout': 'maxMsgTimeoutMs',
  'max-req-timeout': 'maxReqTimeoutMs',
  'max-connections': 'maxConnections',
} as const;

/** Where the command writes, and what stops it (SIGINT/SIGTERM unless a signal is given). */
export interface BrokerCommandIo {
  out?: (line: string) => void;
  err?: (line: string) => void;
  stop?: AbortSignal;
}

export async function run(args: string[], io: BrokerCommandIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const err = io.err ?? ((line: string) => process.stderr.write(`${line}\n`));
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        tcp: { type: 'string' },
        http: { type: 'string' },
        'data-dir': { type: 'string' },
        durable: { type: 'boolean' },
        memory: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(Object.keys(NUMERIC).map((k) => [k, { type: 'string' as const }])),
      },
    }).values;
  } catch (cause) {
    err(`conveyor broker: ${(cause as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    out(USAGE);
    return 0;
  }

  const options: BrokerOptions = {
    tcp: (values.tcp as string | undefined) ?? '127.0.0.1:4150',
    http: (values.http as string | undefined) ?? '127.0.0.1:4151',
  };
  const problems: string[] = [];
  for (const [flag, key] of Object.entries(NUMERIC)) {
    const text = values[flag] as string | undefined;
    if (text === undefined) continue;
    const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n)) problems.push(`--${flag}: expected a whole number, got ${JSON.stringify(text)}`);
    else (options as Record<string, unknown>)[key] = n;
  }
  if (values.memory && values['data-dir'] !== undefined) problems.push('--memory and --data-dir exclude each other');
  if (values.memory && values.durable) problems.push('--durable needs the disk: drop --memory');
  const dataDir = values.memory ? undefined : ((values['data-dir'] as string | undefined) ?? DEFAULT_DATA_DIR);
  if (problems.length > 0) {
    err(`conveyor broker: ${problems.join('; ')}\n\n${USAGE}`);
    return 2;
  }

  try {
    const disk = dataDir === undefined ? undefined : await loadDisk(dataDir, values.durable === true);
    if (disk) options.backend = disk.backend;
    // Durable: nothing is confirmed from memory alone, every message goes through the disk queue.
    if (values.durable) options.memQueueSize = 0;
    const broker = await startBroker(options);
    disk?.restore(broker.engine);
    out(`tcp ${broker.tcpAddress}`);
    out(`http ${broker.httpAddress}`);
    if (dataDir !== undefined) out(`data ${dataDir}${values.durable ? ' (durable)' : ''}`);
    await stopped(io.stop);
    await broker.close();
    return 0;
  } catch (cause) {
    err(`conveyor broker: ${(cause as Error).message}`);
    return 1;
  }
}

/**
 * The disk queue (src/engine/disk) plugged in as the engine's backend. Loaded on demand so that
 * a memory-only broker never loads it.
 */
async function loadDisk(dir: string, durable: boolean): Promise<{ backend: BackendFactory; restore: (engine: RestorableEngine) => void }> {
  // The extension follows this file's: .ts when run from source, .js from dist.
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  let mod: {
    diskBackend?: (options: { dir: string; durable: boolean }) => BackendFactory;
    restoreTopology?: (engine: RestorableEngine, dir: string) => unknown;
  };
  try {
    mod = await import(`../../engine/disk/index${ext}`);
  } catch (cause) {
    throw new ConveyorError('ERR_MISSING_DEPENDENCY', '--data-dir needs the disk queue (src/engine/disk), not in this build', {
      cause,
    });
  }
  if (typeof mod.diskBackend !== 'function') {
    throw new ConveyorError('ERR_MISSING_DEPENDENCY', 'src/engine/disk does not export diskBackend()');
  }
  const { restoreTopology } = mod;
  return { backend: mod.diskBackend({ dir, durable }), restore: (engine) => restoreTopology?.(engine, dir) };
}

function stopped(signal: AbortSignal | undefined): Promise<void> {
  if (signal) {
    return signal.aborted ? Promise.resolve() : new Promise((resolve) => signal.addEventListener('abort', () => resolve()));
  }
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
