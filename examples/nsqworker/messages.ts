/** The talk's messages are log lines; here they are JSON strings, checked on the way in. */
import { defineMessage } from 'conveyor-pipelines';
import { z } from 'zod';

export const LogLine = defineMessage({ name: 'log', codec: 'application/json', schema: z.string().trim().min(1).max(1000) });
