/**
 * The talk's Tornado handler: `nsq.pub`, `nsq.mpub`, and a re-pub when a publish fails.
 *
 *   node --import tsx examples/nsqworker/publish.ts nsq://127.0.0.1:4150
 */
import { pathToFileURL } from 'node:url';
import { type App, app, newId } from 'conveyor-pipelines';
import { LogLine } from './messages.ts';

/**
 * finish_pub's "try to re-pub message again if pub failed", with the same id: a publish that
 * failed may still have reached nsqd (its confirm was lost), and then the worker's dedup drops
 * the second copy.
 */
export async function pubWithRepub(producer: App, line: string, id = newId(), attempts = 3): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await producer.publish(LogLine, line, { id });
    } catch (error) {
      if (attempt >= attempts) throw error;
      console.error(`publish of ${id} failed (${(error as Error).message}); publishing it again`);
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

/** What the demo publishes; main.ts and the test count on this. */
export async function publishDemo(url: string): Promise<void> {
  const producer = app({ url });
  try {
    await pubWithRepub(producer, 'Hello world'); // pub
    await producer.publishMany(LogLine, ['Hello world', 'Hello 世界']); // mpub
    await pubWithRepub(producer, 'flaky: handled on its second delivery');
    await pubWithRepub(producer, 'boom: fails every time, dead-lettered after 3 attempts');
    // The schema is checked on publish too: this one never leaves.
    await producer.publish(LogLine, '   ').catch((e: Error) => console.error(`not published: ${e.message}`));
    // A producer that knows no schema (pynsq, `conveyor pub`) can still send anything; the
    // workers dead-letter such messages with the reason, and go on.
    const transport = await producer.transport();
    const json = { 'content-type': 'application/json' };
    await transport.publish(LogLine.topic, [
      { body: new TextEncoder().encode('42'), headers: json },
      { body: new TextEncoder().encode(JSON.stringify('x'.repeat(5000))), headers: json },
    ]);
    // The same id twice, as a re-pub after a lost confirm would send it: demo handles it once.
    const id = newId();
    await pubWithRepub(producer, 'once, though published twice', id);
    await pubWithRepub(producer, 'once, though published twice', id);
  } finally {
    await producer.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const url = process.argv[2];
  if (!url) {
    console.error('usage: node --import tsx examples/nsqworker/publish.ts nsq://127.0.0.1:4150');
    process.exit(2);
  }
  await publishDemo(url);
}
