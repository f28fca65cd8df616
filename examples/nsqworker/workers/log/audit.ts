/**
 * A second channel on topic "log": it gets every message too (NSQ's fan-out), independently of
 * "demo" — a slow or failing demo worker does not hold it back.
 */
import type { Context } from 'conveyor-pipelines';
import { LogLine } from '../../messages.ts';

export const message = LogLine;

export default async function auditTask(line: string, ctx: Context): Promise<void> {
  console.log(`audit: ${ctx.id} ${line.length} characters`);
}
