import { SERVICES, uniqueName } from '../helpers/index.ts';
import { kvSuite } from './kv-suite.ts';

kvSuite({
  name: 'PostgreSQL',
  service: 'postgres',
  port: SERVICES.postgres.port,
  url: (port = SERVICES.postgres.port) => `postgres://postgres@127.0.0.1:${port}/test`,
  isolate: () => ({ table: uniqueName('kvtest').toLowerCase() }),
  drop: (sink) => sink.dropAll(),
});
