/**
 * The conformance suite against NATS JetStream on 127.0.0.1:4222, through a TCP proxy so that
 * the dropped-connection case can cut the sockets. Streams get a per-run prefix and are deleted
 * at the end.
 */
import { after, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '../../src/connect.ts';
import { parseTransportUrl } from '../../src/core/url.ts';
import { conformance } from '../../src/testing/conformance.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { NatsTransport } from '../../src/transports/nats/index.ts';
import { requireService, SERVICES } from '../helpers/index.ts';

const prefix = `CONF${process.pid}_`;
const proxy = await TcpProxy.start(SERVICES.nats.host, SERVICES.nats.port);

test('NATS is running', async (t) => {
  await requireService(t, 'nats');
});

conformance({
  name: 'nats',
  connect: () => connect(`nats://127.0.0.1:${proxy.port}?streamPrefix=${prefix}&reconnectWaitMs=50&publishTimeoutMs=1000`),
  dropConnection: () => proxy.dropAll(),
});

after(async () => {
  await proxy.close();
  const direct = await NatsTransport.connect(parseTransportUrl(SERVICES.nats.url)).catch(() => undefined);
  if (!direct) return;
  try {
    const jsm = await jetstreamManager(direct.connection);
    for await (const s of jsm.streams.list()) if (s.config.name.startsWith(prefix)) await jsm.streams.delete(s.config.name);
  } finally {
    await direct.close();
  }
});
