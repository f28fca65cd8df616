/**
 * What the dashboard shows and steers, behind one interface: the embedded engine in process
 * (everything, peek included) or an nsqd-compatible broker over its HTTP API (nsq-http.ts).
 */
import type { Headers } from '../core/message.ts';
import type { Transport } from '../core/transport.ts';
import type { DeadLetter, DlqResult, Selection } from './dlq.ts';
import type { ShownBody } from './decode.ts';

export interface ClientView {
  /** The client's own name (NSQ client_id), or `in-process #N` for a subscription in this process. */
  id: string;
  host?: string;
  ready: number;
  inFlight: number;
  messages?: number;
  finished?: number;
  requeued?: number;
}

export interface ChannelView {
  name: string;
  depth: number;
  inFlight: number;
  deferred: number;
  requeued: number;
  timedOut: number;
  messages: number;
  paused: boolean;
  clients: ClientView[];
}

export interface TopicView {
  name: string;
  depth: number;
  messages: number;
  paused: boolean;
  channels: ChannelView[];
}

export interface PeekedMessage {
  id: string;
  attempts: number;
  timestamp: number;
  headers: Headers;
  body: ShownBody;
}

export type Action = 'pause' | 'unpause' | 'empty' | 'delete';

export interface DashboardSource {
  /** What is shown as the engine's name: embedded, nsq, ... */
  readonly kind: string;
  /** Whether `peek` works (nsqd cannot peek: nsq#375). */
  readonly canPeek: boolean;
  topics(): Promise<TopicView[]>;
  /** pause/unpause/empty/delete a topic, or one of its channels when `channel` is given. */
  act(action: Action, topic: string, channel?: string): Promise<void>;
  /** Publishes one message and resolves on the broker's confirm. */
  publish(topic: string, body: Uint8Array, headers: Headers): Promise<void>;
  peek(topic: string, channel: string, max: number): Promise<{ messages: PeekedMessage[]; partial: boolean }>;
  /** The transport dead letters are listed, replayed and discarded through. */
  transport(): Promise<Transport>;
  /** Dead letters without taking them, where the engine can (else through the transport). */
  deadLetters?(topic: string, max: number): Promise<DeadLetter[]>;
  close?(): Promise<void>;
}

export type { DeadLetter, DlqResult, Selection };
