/** The reference pipeline's message: what the seeds' HTTP endpoint receives (an event with a kind). */
import { z } from 'zod';
import { defineMessage } from '../core/schema.ts';

const schema = z.object({ kind: z.string().min(1).max(64), user: z.number().int(), at: z.number(), payload: z.string().max(4096).optional() });
export type EventValue = z.infer<typeof schema>;
export const Event = defineMessage({ name: 'event', topic: 'events', schema });
