/**
 * A subscription's own binding (SubscribeOptions.bind) on amqp://: the same value forms as the
 * URL's `bind.` keys (options.ts), taking precedence over them for that subscription only.
 */
import { ConveyorError } from '../../core/errors.ts';
import type { Binding } from '../../core/transport.ts';
import { type AmqpOptions, type AmqpSource, type AmqpTarget, channelSource, queueName } from './options.ts';

/** `<exchange>/<routing key>` (`/<queue>`: the default exchange), or the problem with it. */
export function parseTarget(value: string): AmqpTarget | string {
  const slash = value.indexOf('/');
  if (slash < 0) return `expected <exchange>/<routing key> ("/${value}" for the default exchange), got ${JSON.stringify(value)}`;
  if (slash === 0 && value.length === 1) return 'the default exchange needs a routing key (the queue\'s name), got "/"';
  return { exchange: value.slice(0, slash), routingKey: value.slice(slash + 1) };
}

/**
 * Where one subscription reads: `bind.channel` (a queue consumed as is), else `bind.topic` read as
 * the URL's topic binding is (the default exchange's queue as is, or Conveyor's queue bound to the
 * exchange), else the URL's bindings and Conveyor's names (channelSource).
 */
export function subscriptionSource(options: AmqpOptions, topic: string, channel: string, bind: Binding | undefined): AmqpSource {
  const bad: string[] = [];
  if (bind?.channel === '') bad.push('bind.channel: expected the name of an existing queue, got ""');
  const target = bind?.topic === undefined ? undefined : parseTarget(bind.topic);
  if (typeof target === 'string') bad.push(`bind.topic: ${target}`);
  if (bad.length) throw new ConveyorError('ERR_BAD_OPTIONS', `amqp:// subscribe ${topic}:${channel}: ${bad.join('; ')}`, { details: { problems: bad } });
  if (bind?.channel !== undefined) return { queue: bind.channel, declare: false };
  if (target === undefined || typeof target === 'string') return channelSource(options, topic, channel);
  if (target.exchange === '') return { queue: target.routingKey, declare: false };
  return { queue: queueName(options, topic, channel), declare: true, exchange: target };
}
