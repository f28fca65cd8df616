/**
 * The conformance suite for nsq:// against the embedded broker's NSQ TCP server (in this
 * process, port 0), through a TCP proxy so that the dropped-connection case can cut the
 * sockets; and against a real nsqd when NSQD_URL is set.
 */
import { after, test } from 'node:test';
import { connect } from '../../src/connect.ts';
import { startBroker } from '../../src/server/index.ts';
import { conformance } from '../../src/testing/conformance.ts';
import { TcpProxy } from '../../src/testing/proxy.ts';

const broker = await startBroker({ tcp: '127.0.0.1:0', http: '127.0.0.1:0' });
const [host, port] = broker.tcpAddress.split(':') as [string, string];
const proxy = await TcpProxy.start(host, Number(port));
after(async () => {
  await proxy.close();
  await broker.close();
});

conformance({
  name: 'nsq (embedded broker)',
  connect: () => connect(`nsq://127.0.0.1:${proxy.port}?reconnectMinMs=20&reconnectMaxMs=200`),
  dropConnection: () => proxy.dropAll(),
});

const NSQD_URL = process.env.NSQD_URL;
if (NSQD_URL) conformance({ name: 'nsq (real nsqd)', connect: () => connect(NSQD_URL) });
else test('conformance: nsq (real nsqd)', { skip: 'no nsqd: set NSQD_URL (nsq://host:4150)' }, () => {});
