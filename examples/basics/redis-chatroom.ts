/**
 * The redis-py "chatroom" snippets (publisher.py and subscriber.py) as one Conveyor file.
 *
 *   node --import tsx examples/basics/redis-chatroom.ts subscribe [redis://127.0.0.1:6379] [chatroom]
 *   node --import tsx examples/basics/redis-chatroom.ts publish [redis://127.0.0.1:6379] [chatroom]
 *
 * A `#ephemeral` topic is Redis Pub/Sub, as in the snippet: nothing is kept, every subscriber
 * gets every message published while it listens. Drop `#ephemeral` and the topic becomes a
 * Redis stream: messages wait for subscribers, and each channel (consumer group) gets them all.
 * To talk to the redis-py scripts themselves: `redis://…?bind.chatroom%23ephemeral=chatroom&envelope=false`.
 */
import { app, bytesMessage } from 'conveyor-pipelines';
import { inputLines } from './input-lines.ts';

const [mode, url = 'redis://127.0.0.1:6379', room = 'chatroom'] = process.argv.slice(2);
const Chat = bytesMessage('chat', { topic: `${room}#ephemeral` });
const client = app({ url });

if (mode === 'publish') {
  // while True: message = input("Message: "); client.publish("chatroom", message)
  for await (const line of inputLines('Message: ')) {
    await client.publish(Chat, new TextEncoder().encode(line));
  }
  await client.close();
} else if (mode === 'subscribe') {
  // pubsub.subscribe("chatroom"); for message in pubsub.listen(): print(f"Got message: {body}")
  await client.consume(Chat, { channel: `subscriber-${process.pid}#ephemeral` }, (body) => {
    console.log(`Got message: ${new TextDecoder().decode(body)}`);
  });
  console.log(`Listening on ${room} at ${url}`);
  await client.run(); // until Ctrl-C
} else {
  console.error('usage: redis-chatroom.ts subscribe|publish [redis://…] [room]');
  process.exitCode = 2;
}
