/**
 * The conformance suite against the engines running on this machine, each behind a TcpProxy so
 * the dropped-connection case cuts real sockets: the embedded broker over NSQ TCP, NATS
 * JetStream. (Mosquitto, RabbitMQ and Redis run theirs in their own files; Kafka needs KAFKA_URL.)
 */
import { after, before } from 'node:test';
import { connect } from '../../src/connect.ts';
import { type Broker, startBroker } from '../../src/server/index.ts';
import { conformance } from '../../src/testing/index.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';

let broker: Broker;
let nsqProxy: TcpProxy;
let natsProxy: TcpProxy;

before(async () => {
  broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
  const [host, port] = broker.tcpAddress.split(':') as [string, string];
  nsqProxy = await TcpProxy.start(host, Number(port));
  natsProxy = await TcpProxy.start('127.0.0.1', 4222);
});
after(async () => {
  await Promise.all([nsqProxy.close(), natsProxy.close()]);
  await broker.close();
});

conformance({
  name: 'nsq:// (embedded broker over TCP)',
  connect: () => connect(`nsq://127.0.0.1:${nsqProxy.port}`),
  dropConnection: () => nsqProxy.dropAll(),
});

conformance({
  name: 'nats:// (JetStream)',
  connect: () => connect(`nats://127.0.0.1:${natsProxy.port}?storage=memory`),
  dropConnection: () => natsProxy.dropAll(),
});

