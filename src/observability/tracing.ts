/**
 * OpenTelemetry, when the application has an SDK: a PRODUCER span per publish with its W3C
 * `traceparent`/`tracestate` written into the message headers (which every transport carries),
 * a CONSUMER span per handled message (per batch for sinks, linked to every message in it)
 * whose parent is the publisher's span, and a SERVER span per gateway POST. Span names and
 * attributes follow the messaging semantic conventions (`send <topic>`, `process <topic>`,
 * `messaging.system`, `messaging.destination.name`, `messaging.consumer.group.name`, ...).
 *
 * `@opentelemetry/api` is an optional peer, loaded on first use. Without it, or without a
 * registered tracer provider, every function here is a pass-through that allocates nothing.
 */
import { createRequire } from 'node:module';

type Api = typeof import('@opentelemetry/api');
type Carrier = Record<string, string>;

let api: Api | null | undefined;
let noopProvider: unknown;

function load(): Api | null {
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)('@opentelemetry/api') as Api;
      noopProvider = new api.ProxyTracerProvider().getDelegate();
    } catch {
      api = null;
    }
  }
  return api;
}

/** The API, only when an SDK registered a tracer provider (checked per call: it may be registered late). */
function active(): Api | null {
  const a = load();
  if (a === null) return null;
  const provider = a.trace.getTracerProvider() as { getDelegate?: () => unknown };
  const real = typeof provider.getDelegate === 'function' ? provider.getDelegate() : provider;
  return real === noopProvider ? null : a;
}

/** True when spans would be recorded: hot paths check this before building a span's closure. */
export function tracingActive(): boolean {
  return active() !== null;
}

const SYSTEMS: Record<string, string> = { amqp: 'rabbitmq', amqps: 'rabbitmq', kafka: 'kafka' };
/** messaging.system: the semantic conventions' names where they have one, else the URL scheme. */
export function messagingSystem(kind: string): string {
  return SYSTEMS[kind] ?? kind;
}

/** Ends a span; with an error, records it and marks the span failed. */
export type EndSpan = (error?: unknown) => void;
const noEnd: EndSpan = () => {};

function finish(a: Api, span: import('@opentelemetry/api').Span): EndSpan {
  return (error) => {
    if (error !== undefined) {
      span.recordException(error as Error);
      span.setStatus({ code: a.SpanStatusCode.ERROR, message: (error as Error)?.message });
    }
    span.end();
  };
}

/**
 * Opens the PRODUCER span of one publish (one call of publish or publishMany) and writes its
 * context into each message's headers. Call the returned function once the broker confirmed.
 */
export function publishSpan(system: string, topic: string, messages: ReadonlyArray<{ id?: string; headers?: Carrier }>): EndSpan {
  const a = active();
  if (a === null) return noEnd;
  const ids = messages.map((m) => m.id ?? '');
  const attributes: Record<string, string | number> = {
    'messaging.system': messagingSystem(system),
    'messaging.destination.name': topic,
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'send',
  };
  if (ids.length === 1) attributes['messaging.message.id'] = ids[0]!;
  else attributes['messaging.batch.message_count'] = ids.length;
  const span = a.trace.getTracer('conveyor').startSpan(`send ${topic}`, { kind: a.SpanKind.PRODUCER, attributes });
  const ctx = a.trace.setSpan(a.context.active(), span);
  for (const m of messages) {
    m.headers ??= {};
    a.propagation.inject(ctx, m.headers);
  }
  return finish(a, span);
}

/** Runs `fn` inside the CONSUMER span of one delivery, child of the span that published it. */
export function processSpan<R>(system: string, topic: string, channel: string, id: string, headers: Readonly<Carrier>, fn: () => Promise<R>): Promise<R> {
  const a = active();
  if (a === null) return fn();
  const parent = a.propagation.extract(a.context.active(), headers);
  const span = a.trace.getTracer('conveyor').startSpan(
    `process ${topic}`,
    {
      kind: a.SpanKind.CONSUMER,
      attributes: {
        'messaging.system': messagingSystem(system),
        'messaging.destination.name': topic,
        'messaging.consumer.group.name': channel,
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.message.id': id,
      },
    },
    parent,
  );
  return runIn(a, span, parent, fn);
}

/**
 * Runs a batch handler inside one CONSUMER span linked to every message's publish span (the
 * conventions' batch shape); its parent is the first message's, so that a trace followed from
 * a publish reaches the sink that stored it.
 */
export function batchSpan<R>(system: string, topic: string, channel: string, headers: readonly Readonly<Carrier>[], fn: () => Promise<R>): Promise<R> {
  const a = active();
  if (a === null) return fn();
  const root = a.ROOT_CONTEXT;
  const links = headers
    .map((h) => a.trace.getSpanContext(a.propagation.extract(root, h)))
    .filter((c): c is import('@opentelemetry/api').SpanContext => c !== undefined && a.trace.isSpanContextValid(c))
    .map((context) => ({ context }));
  const parent = headers.length > 0 ? a.propagation.extract(a.context.active(), headers[0]!) : a.context.active();
  const span = a.trace.getTracer('conveyor').startSpan(
    `process ${topic}`,
    {
      kind: a.SpanKind.CONSUMER,
      links,
      attributes: {
        'messaging.system': messagingSystem(system),
        'messaging.destination.name': topic,
        'messaging.consumer.group.name': channel,
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.batch.message_count': headers.length,
      },
    },
    parent,
  );
  return runIn(a, span, parent, fn);
}

/** Runs `fn` inside a SERVER span continuing the caller's trace (its traceparent header, if any). */
export function serverSpan<R>(name: string, requestHeaders: Record<string, string | string[] | undefined>, attributes: Record<string, string>, fn: () => Promise<R>): Promise<R> {
  const a = active();
  if (a === null) return fn();
  const carrier: Carrier = {};
  for (const key of ['traceparent', 'tracestate']) {
    const v = requestHeaders[key];
    if (typeof v === 'string') carrier[key] = v;
  }
  const parent = a.propagation.extract(a.context.active(), carrier);
  const span = a.trace.getTracer('conveyor').startSpan(name, { kind: a.SpanKind.SERVER, attributes }, parent);
  return runIn(a, span, parent, fn);
}

function runIn<R>(a: Api, span: import('@opentelemetry/api').Span, parent: import('@opentelemetry/api').Context, fn: () => Promise<R>): Promise<R> {
  const end = finish(a, span);
  return a.context.with(a.trace.setSpan(parent, span), fn).then(
    (value) => {
      end();
      return value;
    },
    (error: unknown) => {
      end(error);
      throw error;
    },
  );
}
