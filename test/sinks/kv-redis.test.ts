import { SERVICES, uniqueName } from '../helpers/index.ts';
import { kvSuite } from './kv-suite.ts';

kvSuite({
  name: 'Redis',
  service: 'redis',
  port: SERVICES.redis.port,
  url: (port = SERVICES.redis.port) => `redis://127.0.0.1:${port}`,
  isolate: () => ({ prefix: uniqueName('kvtest') }),
  drop: (sink) => sink.dropAll(),
});
