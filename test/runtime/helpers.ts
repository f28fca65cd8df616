import type { TestContext } from 'node:test';
import { z } from 'zod';
import { connect } from '../../src/connect.ts';
import type { Delivery } from '../../src/core/message.ts';
import { defineMessage } from '../../src/core/schema.ts';
import type { Transport } from '../../src/core/transport.ts';
import { type App, app } from '../../src/runtime/app.ts';
import { uniqueName, waitFor } from '../helpers/index.ts';

export const Job = defineMessage({ name: 'job', schema: z.object({ n: z.number(), note: z.string().optional() }) });

/** A fresh named memory engine per test, so a second app can see the same broker. */
export async function setup(t: TestContext, query = 'scanIntervalMs=5') {
  const url = `memory://${uniqueName('rt')}?${query}`;
  const transport = await connect(url);
  t.after(() => transport.close());
  const topic = uniqueName('job');
  const Msg = defineMessage({ name: 'job', topic, schema: z.object({ n: z.number(), note: z.string().optional() }) });
  const make = (): App => {
    const a = app({ url });
    t.after(() => a.close({ force: true }));
    return a;
  };
  return { url, transport, topic, Msg, make };
}

/** Collects what reaches a topic's channel, acking each. */
export async function collect(transport: Transport, topic: string, channel = 'check'): Promise<Delivery[]> {
  const got: Delivery[] = [];
  await transport.subscribe(topic, channel, { maxInFlight: 100 }, (d) => {
    got.push(d);
    d.ack();
  });
  return got;
}

export { waitFor };
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
