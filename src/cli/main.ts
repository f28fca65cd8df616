#!/usr/bin/env node
/**
 * `conveyor <command> [args]`. Commands are listed statically (each `src/cli/commands/<name>.ts`
 * exports `run(args)` and `summary`) and loaded on use, so `conveyor broker` loads no broker
 * client and the build keeps every import checked.
 */
import { isConveyorError } from '../core/errors.ts';

interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  broker: () => import('./commands/broker.ts'),
  start: () => import('./commands/start.ts'),
  load: () => import('./commands/load.ts'),
  run: () => import('./commands/run.ts'),
  pub: () => import('./commands/pub.ts'),
  tail: () => import('./commands/tail.ts'),
  stats: () => import('./commands/stats.ts'),
  dlq: () => import('./commands/dlq.ts'),
};

const SUMMARIES: Record<string, string> = {
  broker: 'serve the embedded broker over NSQ TCP and HTTP',
  start: 'run the reference pipeline (broker, gateway, PostgreSQL archive, live counts)',
  load: 'drive the reference pipeline with traffic and print what arrived where',
  run: 'run the apps a module exports, or workers/<topic>/<channel>.ts',
  pub: 'publish a message to any engine',
  tail: 'print messages as they arrive',
  stats: "show a broker's topics and channels",
  dlq: 'list, replay or purge dead letters (conveyor dlq list|replay|purge <url> <topic>)',
};

function usage(): string {
  return [
    'usage: conveyor <command> [options]',
    '',
    'commands:',
    ...Object.entries(SUMMARIES).map(([name, text]) => `  ${name.padEnd(8)}  ${text}`),
    '',
    'Run `conveyor <command> --help` for a command\'s options.',
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 1;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`conveyor: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const command = await load();
  try {
    return await command.run(args);
  } catch (error) {
    // node:util parseArgs rejects an unknown option or a missing value with a TypeError whose
    // code starts ERR_PARSE_ARGS_: a usage mistake, so one line and the usage, not a stack.
    const code = (error as { code?: unknown })?.code;
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw error;
    process.stderr.write(`conveyor ${name}: ${(error as Error).message}\n${usageOf(name, command.summary)}\n`);
    return 2;
  }
}

/** A command's summary ends with its synopsis after the first ': ' where it has one. */
function usageOf(name: string, summary: string): string {
  const i = summary.indexOf(': conveyor ');
  const synopsis = i >= 0 ? `usage: ${summary.slice(i + 2)}` : `usage: conveyor ${name} [options]`;
  return `${synopsis}  (conveyor ${name} --help for every option)`;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Clear errors on a terminal: our code and message, not a stack, for errors we raised.
    if (isConveyorError(error)) process.stderr.write(`conveyor: ${error.code}: ${error.message}\n`);
    else process.stderr.write(`conveyor: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
