/**
 * Python's `while True: message = input("Message: ")` for the producer halves: prompts, yields each
 * line typed (or piped), and ends with stdin. The prompt is shown again only while stdin is open:
 * piped input closes the reader while a publish is still awaited, and Node 24 throws on a prompt
 * after close (ERR_USE_AFTER_CLOSE).
 */
import { createInterface } from 'node:readline';

export async function* inputLines(prompt: string): AsyncGenerator<string> {
  const input = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  let open = true;
  input.once('close', () => {
    open = false;
  });
  input.setPrompt(prompt);
  input.prompt();
  for await (const line of input) {
    yield line;
    if (open) input.prompt();
  }
}
