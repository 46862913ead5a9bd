/**
 * The daemon's logger: pino, JSON lines, pretty-printed when standard output
 * is a terminal. Credentials are redacted by path wherever they may appear,
 * and anything a client sent belongs under a key of ours (`frame`, `body`).
 */
import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger };

/** Paths whose values never reach a log line. */
export const redactedPaths = [
  'token',
  'secret',
  'password',
  'enrollment_secret',
  'authorization',
  '*.token',
  '*.secret',
  '*.password',
  '*.enrollment_secret',
  '*.authorization',
  '*.Authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'config.databaseUrl',
  'config.dbPassword',
];

export interface LoggerSettings {
  readonly level: string;
  /** Pretty output; defaults to whether stdout is a terminal. */
  readonly pretty?: boolean;
  /** A destination stream; defaults to stdout. */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level,
    base: { service: 'citadel-archer' },
    redact: { paths: redactedPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const pretty = settings.pretty ?? (settings.destination === undefined && process.stdout.isTTY);
  if (pretty) {
    return pino({
      ...options,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' },
      },
    });
  }
  if (settings.destination) return pino(options, settings.destination);
  return pino(options);
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
