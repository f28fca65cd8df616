/**
 * `conveyor broker`: the embedded broker served over NSQ's TCP protocol and HTTP API, like
 * running nsqd. Runs until SIGINT or SIGTERM, then closes gracefully (clients flushed, engine
 * closed, the disk queue synced).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConveyorError } from '../../core/errors.ts';
import type { RestorableEngine } from '../../engine/disk/index.ts';
import type { BackendFactory } from '../../engine/types.ts';
import { createLogger } from '../../observability/log.ts';
import { type Broker, type BrokerOptions, startBroker } from '../../server/index.ts';

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
  --lookupd-tcp-address HOST:PORT
                           register with this nsqlookupd, as nsqd does (repeatable)
  --broadcast-address HOST the address nsqlookupd gives consumers (default the --tcp
                           host, or this machine's hostname when bound to all)
  --no-dashboard           do not serve the dashboard at http://HTTP/dashboard/
  --dashboard-token TOKEN  the dashboard's API wants Authorization: Bearer TOKEN
  --dashboard-read-only    the dashboard shows, and changes nothing
  --tls-cert FILE          PEM certificate: clients may upgrade to TLS after IDENTIFY
                           (as nsqd), and the HTTP API is served as HTTPS
  --tls-key FILE           PEM private key for --tls-cert
  --tls-required           refuse every command but IDENTIFY until the client upgraded to TLS
  --tls-client-auth-policy require|require-verify
                           ask TLS clients for a certificate (require-verify: checked against
                           --tls-root-ca-file); its CN goes to the auth server as common_name
  --tls-root-ca-file FILE  PEM CA certificates client certificates must chain to
  --auth-http-address H:P  auth server asked for every AUTH secret (GET /auth?...), as nsqd;
                           repeat for more than one
  --http-token TOKEN       require "Authorization: Bearer TOKEN" on the HTTP API (not /ping);
                           also read from CONVEYOR_HTTP_TOKEN
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
  let values: Record<string, string | boolean | string[] | undefined>;
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
        'lookupd-tcp-address': { type: 'string', multiple: true },
        'broadcast-address': { type: 'string' },
        'no-dashboard': { type: 'boolean' },
        'dashboard-token': { type: 'string' },
        'dashboard-read-only': { type: 'boolean' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-required': { type: 'boolean' },
        'tls-client-auth-policy': { type: 'string' },
        'tls-root-ca-file': { type: 'string' },
        'auth-http-address': { type: 'string', multiple: true },
        'http-token': { type: 'string' },
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
    lookupdTcpAddresses: values['lookupd-tcp-address'] as string[] | undefined,
    broadcastAddress: values['broadcast-address'] as string | undefined,
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
  const certFile = values['tls-cert'] as string | undefined;
  const keyFile = values['tls-key'] as string | undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) problems.push('--tls-cert and --tls-key go together');
  if (values['tls-required'] && certFile === undefined) problems.push('--tls-required needs --tls-cert and --tls-key');
  const policy = values['tls-client-auth-policy'] as string | undefined;
  const rootCaFile = values['tls-root-ca-file'] as string | undefined;
  if (policy !== undefined && policy !== 'require' && policy !== 'require-verify') {
    problems.push(`--tls-client-auth-policy: expected require or require-verify, got ${JSON.stringify(policy)}`);
  }
  if ((policy !== undefined || rootCaFile !== undefined) && certFile === undefined) problems.push('--tls-client-auth-policy/--tls-root-ca-file need --tls-cert and --tls-key');
  if (policy === 'require-verify' && rootCaFile === undefined) problems.push('--tls-client-auth-policy require-verify needs --tls-root-ca-file');
  if (certFile !== undefined && keyFile !== undefined) {
    try {
      options.tls = {
        cert: readFileSync(certFile),
        key: readFileSync(keyFile),
        required: values['tls-required'] === true,
        ...(policy === 'require' || policy === 'require-verify' ? { clientAuthPolicy: policy } : {}),
        ...(rootCaFile === undefined ? {} : { rootCa: readFileSync(rootCaFile) }),
      };
    } catch (cause) {
      problems.push(`--tls-cert/--tls-key/--tls-root-ca-file: ${(cause as Error).message}`);
    }
  }
  const authAddresses = values['auth-http-address'] as string[] | undefined;
  if (authAddresses !== undefined) options.auth = { httpAddresses: authAddresses };
  const token = (values['http-token'] as string | undefined) ?? process.env.CONVEYOR_HTTP_TOKEN;
  if (token !== undefined && token !== '') options.httpToken = token;
  const dataDir = values.memory ? undefined : ((values['data-dir'] as string | undefined) ?? DEFAULT_DATA_DIR);
  if (problems.length > 0) {
    err(`conveyor broker: ${problems.join('; ')}\n\n${USAGE}`);
    return 2;
  }

  // Events go to stderr as JSON lines (CONVEYOR_LOG_LEVEL); stdout keeps the addresses scripts read.
  let log: ReturnType<typeof createLogger>;
  try {
    log = createLogger('broker', { write: err });
  } catch (cause) {
    err(`conveyor broker: ${(cause as Error).message}`);
    return 2;
  }
  options.log = (line) => log.warn(line);
  try {
    const disk = dataDir === undefined ? undefined : await loadDisk(dataDir, values.durable === true);
    if (disk) options.backend = disk.backend;
    // Durable: nothing is confirmed from memory alone, every message goes through the disk queue.
    if (values.durable) options.memQueueSize = 0;
    // Listen for SIGINT/SIGTERM before anything is bound: a signal during start-up (the dashboard
    // loads after the addresses are printed) must stop the broker gracefully, not kill it.
    const stop = stopped(io.stop);
    const broker = await startBroker(options);
    disk?.restore(broker.engine);
    out(`tcp ${broker.tcpAddress}`);
    out(`${options.tls ? 'https' : 'http'} ${broker.httpAddress}`);
    if (options.tls) out(`tls ${options.tls.required ? 'required' : 'offered (IDENTIFY tls_v1)'}`);
    if (options.auth) out(`auth ${options.auth.httpAddresses.join(', ')}`);
    const { note, warnings } = exposure(broker.tcpAddress, broker.httpAddress, options);
    if (note) out(note);
    for (const line of warnings) log.warn(line);
    if (dataDir !== undefined) out(`data ${dataDir}${values.durable ? ' (durable)' : ''}`);
    for (const address of options.lookupdTcpAddresses ?? []) out(`lookupd ${address}`);
    const board = values['no-dashboard'] ? undefined : await mountDashboard(broker, values);
    if (board) out(`dashboard ${options.tls ? 'https' : 'http'}://${broker.httpAddress}${board.prefix}/`);
    log.info('listening', { tcp: broker.tcpAddress, http: broker.httpAddress, data: dataDir ?? null, durable: values.durable === true });
    await stop;
    log.info('stopping');
    await board?.close();
    await broker.close();
    log.info('stopped');
    return 0;
  } catch (cause) {
    log.error('failed', { error: cause });
    err(`conveyor broker: ${(cause as Error).message}`);
    return 1;
  }
}

/**
 * What the operator should know about who can reach the broker: by default it listens on
 * 127.0.0.1 only; bound wider without AUTH (or the HTTP API without a token) anyone on the
 * network may publish and consume, which is said on stderr rather than refused (nsqd allows it).
 */
function exposure(tcp: string, http: string, options: BrokerOptions): { note?: string; warnings: string[] } {
  const local = (address: string) => /^(127\.|\[::1\]|localhost)/.test(address);
  const warnings: string[] = [];
  if (local(tcp) && local(http)) {
    return options.auth ? { warnings } : { note: 'access loopback only (no --auth-http-address); --tcp/--http 0.0.0.0:PORT serve other hosts', warnings };
  }
  if (!local(tcp) && !options.auth) warnings.push(`conveyor broker: warning: TCP ${tcp} is reachable from other hosts and no --auth-http-address is set: anyone there may publish and subscribe`);
  if (!local(http) && !options.httpToken) warnings.push(`conveyor broker: warning: HTTP ${http} is reachable from other hosts without --http-token`);
  return { warnings };
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

/** The dashboard on the broker's HTTP listener, loaded on demand like the disk queue. */
async function mountDashboard(broker: Broker, values: Record<string, string | boolean | string[] | undefined>) {
  const { Engine } = await import('../../engine/engine.ts');
  if (!(broker.engine instanceof Engine)) return undefined;
  const { dashboard } = await import('../../dashboard/handler.ts');
  // A broker whose HTTP API wants a token protects its dashboard with the same one by default.
  const token = (values['dashboard-token'] as string | undefined) ?? (values['http-token'] as string | undefined) ?? process.env.CONVEYOR_HTTP_TOKEN;
  const board = dashboard({
    engine: broker.engine,
    clients: () => broker.clients(),
    prefix: '/dashboard',
    readOnly: values['dashboard-read-only'] === true,
    ...(token ? { auth: { token } } : {}),
  });
  broker.mount(board);
  return board;
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
