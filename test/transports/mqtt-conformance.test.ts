/**
 * The conformance suite against Mosquitto on 127.0.0.1:1883 (MQTT 5), through a TCP proxy so
 * that the dropped-connection case can cut the sockets. Sessions expire 10 s after the run.
 * MQTT declares no delayed nack, no in-flight timeout and no touch: those cases are skipped
 * with the reason (docs/decisions.md, src/transports/mqtt/index.ts).
 */
import { after, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import { conformance } from '../../src/testing/conformance.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';
import { requireService, SERVICES } from '../helpers/index.ts';

const proxy = await TcpProxy.start(SERVICES.mqtt.host, SERVICES.mqtt.port);
after(() => proxy.close());

test('Mosquitto is running', async (t) => {
  await requireService(t, 'mqtt');
});

conformance({
  name: 'mqtt',
  connect: () => connect(`mqtt://127.0.0.1:${proxy.port}?sessionExpirySec=10&reconnectMs=100&publishTimeoutMs=3000`),
  dropConnection: () => proxy.dropAll(),
});
