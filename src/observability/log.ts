/**
 * Structured logs: one line of JSON per event on stderr, `{"time","level","component","msg",...fields}`,
 * filtered by `CONVEYOR_LOG_LEVEL` (debug, info, warn, error, silent; default info). What a
 * command prints as its result (addresses, tables) stays plain text on stdout: logs are for
 * events, read by machines (journald, Loki, `jq`).
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  /** @default process.env.CONVEYOR_LOG_LEVEL ?? 'info' */
  level?: LogLevel | 'silent';
  /** @default a line on stderr */
  write?: (line: string) => void;
}

/** The level named by CONVEYOR_LOG_LEVEL; an unknown name is an error, not a silent default. */
export function levelFromEnv(value = process.env.CONVEYOR_LOG_LEVEL): LogLevel | 'silent' {
  if (value === undefined || value === '') return 'info';
  const v = value.toLowerCase();
  if (v in RANK) return v as LogLevel | 'silent';
  throw new Error(`CONVEYOR_LOG_LEVEL=${value}: expected one of debug, info, warn, error, silent`);
}

export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? levelFromEnv()];
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const at =
    (level: LogLevel) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (RANK[level] < min) return;
      write(JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...fields }, errorFields));
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Errors have no enumerable fields; log their message and code instead of `{}`. */
function errorFields(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? { message: value.message } : { message: value.message, code };
  }
  return value;
}
