/**
 * `conveyor-pipelines/dashboard`: the live dashboard as a Node request handler, dead-letter
 * list/replay/purge over any transport, and exact handler-time percentiles (HandlerTimings).
 *
 * @example
 * import { dashboard } from 'conveyor-pipelines/dashboard';
 * const board = dashboard({ engine, apps: [pipeline], prefix: '/dashboard' });
 * http.createServer((req, res) => board(req, res)).listen(8081);
 */
export { type Dashboard, type DashboardApp, type DashboardOptions, dashboard, type NodeHandler } from './handler.ts';
export { type EngineSourceOptions, engineSource } from './engine-source.ts';
export { nsqSource, type NsqSourceOptions } from './nsq-source.ts';
export {
  DLQ_CHANNEL,
  type DeadLetter,
  type DlqOptions,
  type DlqResult,
  deadTopicOf,
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
  type Selection,
} from './dlq.ts';
export { type ShownBody, showBody } from './decode.ts';
export type { Action, ChannelView, ClientView, DashboardSource, PeekedMessage, TopicView } from './source.ts';
export { HandlerTimings } from './timing.ts';
