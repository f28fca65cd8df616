/**
 * Shared setup for the server suites: a broker on port 0 over a fresh engine, closed when the
 * test ends, and raw clients closed with it.
 */
import type { TestContext } from 'node:test';
import { type Broker, type BrokerOptions, startBroker } from '../../src/server/index.ts';
import { cmd, WireClient } from './wire.ts';

export async function testBroker(t: TestContext, options: BrokerOptions = {}): Promise<Broker> {
  const broker = await startBroker({
    tcp: '127.0.0.1:0',
    http: '127.0.0.1:0',
    ...options,
  });
  t.after(() => broker.close());
  return broker;
}

export async function client(t: TestContext, broker: Broker, magic = true): Promise<WireClient> {
  const c = await WireClient.open(broker.tcpAddress, magic);
  t.after(() => c.close());
  return c;
}

/** IDENTIFY with feature negotiation; returns the server's JSON answer. */
export async function identify(c: WireClient, fields: Record<string, unknown> = {}): Promise<Record<string, any>> {
  c.write(cmd('IDENTIFY', JSON.stringify({ feature_negotiation: true, ...fields })));
  return JSON.parse(await c.response());
}

export async function subscribe(c: WireClient, topic: string, channel: string, rdy?: number): Promise<void> {
  c.write(cmd(`SUB ${topic} ${channel}`));
  const answer = await c.response();
  if (answer !== 'OK') throw new Error(`SUB answered ${answer}`);
  if (rdy !== undefined) c.write(cmd(`RDY ${rdy}`));
}

export async function publish(c: WireClient, topic: string, body: string | Buffer): Promise<void> {
  c.write(cmd(`PUB ${topic}`, body));
  const answer = await c.response();
  if (answer !== 'OK') throw new Error(`PUB answered ${answer}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
