/**
 * The reference pipeline's message: what the seeds' HTTP endpoint receives (an event with a kind).
 *
 * The schema is written against Standard Schema by hand rather than with zod: `conveyor start`
 * must run from the installed package, where zod (a devDependency) is absent, and four fields do
 * not justify a runtime dependency. See docs/decisions.md, "startfix".
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { defineMessage } from '../core/schema.ts';

export interface EventValue {
  /** 1 to 64 characters. */
  kind: string;
  /** An integer. */
  user: number;
  /** When it happened, ms since the epoch. */
  at: number;
  /** At most 4096 characters. */
  payload?: string | undefined;
}

type Issue = StandardSchemaV1.Issue;

/** What a value is, for an issue message ("received function" helps nobody). */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  return typeof value;
}

function text(value: unknown, key: string, min: number, max: number, issues: Issue[]): void {
  if (typeof value !== 'string') issues.push({ message: `expected a string, got ${kindOf(value)}`, path: [key] });
  else if (value.length < min || value.length > max) {
    issues.push({ message: `expected ${min} to ${max} characters, got ${value.length}`, path: [key] });
  }
}

function number(value: unknown, key: string, integer: boolean, issues: Issue[]): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) issues.push({ message: `expected a finite number, got ${kindOf(value)}`, path: [key] });
  else if (integer && !Number.isInteger(value)) issues.push({ message: `expected an integer, got ${value}`, path: [key] });
}

/** Validates an EventValue; unknown keys are dropped, as zod's z.object does. */
export const eventSchema: StandardSchemaV1<unknown, EventValue> = {
  '~standard': {
    version: 1,
    vendor: 'conveyor',
    validate(value) {
      if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
        return { issues: [{ message: `expected an object {kind, user, at, payload?}, got ${kindOf(value)}` }] };
      }
      const v = value as Record<string, unknown>;
      const issues: Issue[] = [];
      text(v.kind, 'kind', 1, 64, issues);
      number(v.user, 'user', true, issues);
      number(v.at, 'at', false, issues);
      if (v.payload !== undefined) text(v.payload, 'payload', 0, 4096, issues);
      if (issues.length) return { issues };
      const out: EventValue = { kind: v.kind as string, user: v.user as number, at: v.at as number };
      if (v.payload !== undefined) out.payload = v.payload as string;
      return { value: out };
    },
  },
};

export const Event = defineMessage({ name: 'event', topic: 'events', schema: eventSchema });
