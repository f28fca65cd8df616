/**
 * Topologies that already exist on JetStream (`bind.`, options.ts): a stream found or checked,
 * never created or updated, and durable consumers consumed as they are configured.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { ConveyorError } from '../../core/errors.ts';
import type { Binding } from '../../core/transport.ts';
import { consumerProblem, type NatsOptions, type NatsTarget, parseTarget, targetProblem } from './options.ts';

/** Where one subscription reads: its topic's target (undefined = Conveyor's own stream) and an existing consumer, if bound. */
export interface NatsSource {
  target: NatsTarget | undefined;
  consumer: string | undefined;
}

/** The subscription's own binding first, then the URL's; bad values are ERR_BAD_OPTIONS, all at once. */
export function sourceOf(options: NatsOptions, topic: string, channel: string, bind: Binding | undefined): NatsSource {
  const bad: string[] = [];
  const topicProblem = bind?.topic === undefined ? undefined : targetProblem(bind.topic);
  const channelProblem = bind?.channel === undefined ? undefined : consumerProblem(bind.channel);
  if (topicProblem) bad.push(`bind.topic: ${topicProblem}`);
  if (channelProblem) bad.push(`bind.channel: ${channelProblem}`);
  if (bad.length) throw new ConveyorError('ERR_BAD_OPTIONS', `nats:// subscribe ${topic}:${channel}: ${bad.join('; ')}`, { details: { bad } });
  return {
    target: bind?.topic !== undefined ? parseTarget(bind.topic) : options.topics.get(topic),
    consumer: bind?.channel ?? options.consumers.get(`${topic}:${channel}`),
  };
}

/** The bound stream's name: checked when named, else the one stream whose subjects hold the subject. */
export async function findStream(jsm: JetStreamManager, topic: string, target: NatsTarget): Promise<string> {
  if (target.stream !== '') {
    try {
      await jsm.streams.info(target.stream);
      return target.stream;
    } catch (cause) {
      if (isCode(cause, 10059)) {
        throw new ConveyorError('ERR_NOT_FOUND', `nats:// topic ${topic} is bound to stream ${JSON.stringify(target.stream)}, which does not exist`, {
          cause,
          details: { topic, ...target },
        });
      }
      throw new ConveyorError('ERR_TRANSPORT', `nats:// could not look up stream ${target.stream}: ${(cause as Error).message}`, { cause });
    }
  }
  let name: string;
  try {
    name = await jsm.streams.find(target.subject);
  } catch (cause) {
    throw new ConveyorError('ERR_NOT_FOUND', `nats:// topic ${topic} is bound to subject ${JSON.stringify(target.subject)}, which no stream holds: ${(cause as Error).message}`, {
      cause,
      details: { topic, ...target },
    });
  }
  return name;
}

/** An existing durable consumer to read as is: it must exist and be a pull consumer. */
export async function checkConsumer(jsm: JetStreamManager, stream: string, name: string, where: string): Promise<void> {
  let info: Awaited<ReturnType<JetStreamManager['consumers']['info']>>;
  try {
    info = await jsm.consumers.info(stream, name);
  } catch (cause) {
    if (isCode(cause, 10014)) {
      throw new ConveyorError('ERR_NOT_FOUND', `nats:// ${where} is bound to consumer ${JSON.stringify(name)}, which stream ${stream} does not have`, {
        cause,
        details: { stream, consumer: name },
      });
    }
    throw new ConveyorError('ERR_TRANSPORT', `nats:// could not look up consumer ${name} on ${stream}: ${(cause as Error).message}`, { cause });
  }
  if (info.config.deliver_subject) {
    throw new ConveyorError('ERR_BAD_OPTIONS', `nats:// ${where} is bound to consumer ${JSON.stringify(name)}, a push consumer; Conveyor reads pull consumers`, {
      details: { stream, consumer: name },
    });
  }
}

export function isCode(err: unknown, code: number): boolean {
  // JetStreamApiError.code is the API's err_code.
  return (err as { code?: unknown } | undefined)?.code === code;
}
