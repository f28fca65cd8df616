/**
 * `conveyor start` (`npm start`): the seeds' pipeline with nothing installed. An embedded broker
 * (served over NSQ TCP and HTTP too), the HTTP gateway taking events, a channel `archive`
 * batching them into PostgreSQL (embedded PGlite in ./.conveyor/pgdata, or --pg URL), and a
 * channel `counts` keeping live counts per kind. Prints a status line every few seconds;
 * `conveyor load` drives it. Ctrl-C stops it gracefully.
 *
 * `--broker URL` runs the same pipeline over an existing broker instead of the embedded one
 * (`--broker kafka://127.0.0.1:9092`: the seed's aiohttp → Kafka → batched PostgreSQL): topic
 * `events`, channels `archive` and `counts` are that engine's own (on Kafka: consumer groups
 * `events:archive` and `events:counts`).
 */
import { parseArgs } from 'node:util';
import { ConveyorError, isConveyorError } from '../../core/errors.ts';
import { dashboard } from '../../dashboard/handler.ts';
import { Engine } from '../../engine/engine.ts';
import { type Gateway, gateway } from '../../gateway/index.ts';
import { type App, app } from '../../runtime/app.ts';
import { type Broker, startBroker } from '../../server/index.ts';
import { type PostgresSink, postgresSink } from '../../sinks/postgres/index.ts';
import { MemoryTransport } from '../../transports/memory/transport.ts';
import { Event, type EventValue } from '../reference.ts';

export const summary = 'run the reference pipeline: broker, HTTP gateway, PostgreSQL archive, live counts';

const USAGE = `usage: conveyor start [options]

  --gateway HOST:PORT   HTTP ingestion (default 127.0.0.1:8080)
  --tcp HOST:PORT       the broker's NSQ TCP address (default 127.0.0.1:4150)
  --http HOST:PORT      the broker's HTTP API (default 127.0.0.1:4151)
  --broker URL          run over this broker instead of the embedded one
                        (kafka://host:9092, nsq://, amqp://, redis://, nats://, mqtt://);
                        --tcp and --http are then unused
  --pg URL              archive into this PostgreSQL instead of embedded PGlite
  --pg-dir DIR          PGlite data directory (default ./.conveyor/pgdata)
  --every SECONDS       status line interval (default 5)
  -h, --help            this text
`;

export async function run(args: string[], stop?: AbortSignal): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      gateway: { type: 'string', default: '127.0.0.1:8080' },
      tcp: { type: 'string', default: '127.0.0.1:4150' },
      http: { type: 'string', default: '127.0.0.1:4151' },
      broker: { type: 'string' },
      pg: { type: 'string' },
      'pg-dir': { type: 'string', default: './.conveyor/pgdata' },
      every: { type: 'string', default: '5' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const out = (line: string) => process.stdout.write(`${line}\n`);
  // What started, to close in reverse order: a start that fails half-way frees its ports and
  // exits non-zero instead of hanging with a broker nobody can use.
  const started: Array<[string, () => Promise<unknown>]> = [];
  const closeStarted = async () => {
    for (const [what, close] of started.reverse()) {
      await close().catch((error: unknown) => process.stderr.write(`conveyor: closing ${what}: ${(error as Error).message}\n`));
    }
    started.length = 0;
  };
  const counts = new Map<string, number>();
  let counted = 0;
  let running: Running;
  let closeDashboard = async () => {};
  try {
    // The database first: it is what most often fails (a missing PGlite, a wrong URL), and then
    // nothing else has been started yet.
    const sink = postgresSink<EventValue>({
      ...(values.pg ? { url: values.pg } : { dataDir: values['pg-dir'] }),
      table: 'events',
      columns: {
        kind: { type: 'text', value: (e) => e.kind },
        user_id: { type: 'int8', value: (e) => e.user },
        at: { type: 'timestamptz', value: (e) => new Date(e.at).toISOString() },
        payload: { type: 'text', value: (e) => e.payload ?? null },
      },
    });
    started.push(['the database', () => sink.close()]);
    await sink.exec('CREATE TABLE IF NOT EXISTS events (id text PRIMARY KEY, kind text NOT NULL, user_id int8, at timestamptz, payload text)');
    let broker: Broker | undefined;
    let engine: Engine | undefined;
    let pipeline: App;
    if (values.broker) {
      pipeline = app({ url: values.broker });
      started.push(['the pipeline', () => pipeline.close()]);
      // Connect now: a wrong URL or a broker that is down fails the start, not the first event.
      await pipeline.transport();
    } else {
      engine = new Engine();
      broker = await startBroker({ engine, tcp: values.tcp, http: values.http });
      started.push(['the broker', () => broker!.close()]);
      pipeline = app({ transport: new MemoryTransport(engine), ownsTransport: true });
      started.push(['the pipeline', () => pipeline.close()]);
    }
    await pipeline.consumeBatch(Event, { channel: 'archive', maxInFlight: 2000, batch: { maxSize: 1000, maxWaitMs: 500, concurrency: 2 } }, sink.handler);
    await pipeline.consume(Event, { channel: 'counts', concurrency: 64, maxInFlight: 1000 }, (e) => {
      counts.set(e.kind, (counts.get(e.kind) ?? 0) + 1);
      counted++;
    });
    const archived = async () => Number((await sink.query<{ n: string }>('SELECT count(*) AS n FROM events'))[0]!.n);
    const [gwHost, gwPort] = splitAddress(values.gateway);
    const gw = await gateway({
      transport: pipeline,
      topics: { events: Event },
      host: gwHost,
      port: gwPort,
      extraStats: async () => ({
        pipeline: { archived: await archived(), counted, counts: Object.fromEntries(counts), dead: dead(pipeline) },
      }),
    });
    started.push(['the gateway', () => gw.close()]);
    // The dashboard reads the embedded engine and is served by its broker; over --broker there is
    // neither (the engine's own tools show its topics: nsqadmin, the RabbitMQ console, kcat -L, ...).
    if (broker && engine) {
      const served = broker;
      const board = dashboard({ engine, clients: () => served.clients(), apps: [pipeline], prefix: '/dashboard' });
      served.mount(board);
      closeDashboard = () => board.close();
      started.push(['the dashboard', closeDashboard]);
    }
    running = { broker, pipeline, gw, sink, archived };
  } catch (error) {
    await closeStarted();
    if (!values.pg && isConveyorError(error) && error.code === 'ERR_MISSING_DEPENDENCY') {
      throw new ConveyorError('ERR_MISSING_DEPENDENCY', `${error.message}, or archive into a PostgreSQL server with --pg postgres://user@host/db`, {
        cause: error,
        ...(error.details ? { details: error.details } : {}),
      });
    }
    throw error;
  }
  const { broker, pipeline, gw, sink, archived } = running;
  const tailUrl = broker ? `nsq://${broker.tcpAddress}` : (values.broker ?? '');
  out(broker ? `conveyor: broker on nsq://${broker.tcpAddress} (HTTP ${broker.httpAddress})` : `conveyor: broker ${redact(tailUrl)}`);
  out(`conveyor: gateway on ${gw.url} — POST ${gw.url}/v1/topics/events  {"kind":"click","user":1,"at":${Date.now()}}`);
  if (broker) out(`conveyor: dashboard on http://${broker.httpAddress}/dashboard/`);
  out(`conveyor: archiving into ${values.pg ? values.pg : `embedded PostgreSQL at ${values['pg-dir']}`}; drive it with: npm run load`);
  out(`conveyor: bad messages go to events.dead; read them with: conveyor tail ${redact(tailUrl)} events.dead`);
  const timer = setInterval(async () => {
    const published = (gw.stats().messages as Record<string, number>).events ?? 0;
    const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, n]) => `${k}=${n}`).join(' ');
    out(`published ${published}  archived ${await archived().catch(() => '?')}  counted ${counted}  dead ${dead(pipeline)}  ${top}`);
  }, Number(values.every) * 1000);
  await new Promise<void>((resolve) => {
    if (stop) stop.addEventListener('abort', () => resolve(), { once: true });
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
  clearInterval(timer);
  out('conveyor: stopping — finishing in-flight work and flushing the last batch');
  await gw.close();
  await closeDashboard();
  await pipeline.close();
  await broker?.close();
  out(`conveyor: stopped; archived ${await archived()} events`);
  await sink.close();
  return 0;
}

interface Running {
  broker: Broker | undefined;
  pipeline: App;
  gw: Gateway;
  sink: PostgresSink<EventValue>;
  archived: () => Promise<number>;
}

/** Dead letters across the pipeline's consumers (each also logged by the app, rate-limited). */
function dead(pipeline: App): number {
  return pipeline.stats().reduce((n, c) => n + c.dead, 0);
}

/** A URL for the console: its password replaced. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href.replace(/\/$/, '');
  } catch {
    return url;
  }
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}
