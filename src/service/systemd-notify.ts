/**
 * The systemd notification protocol, for `Type=notify` units: `READY=1` once
 * the daemon can serve (listeners bound, database answering, migrations
 * applied), `STOPPING=1` when shutdown starts, and `WATCHDOG=1` pings sent
 * from the event loop at half of `WATCHDOG_USEC`, so a wedged loop is
 * restarted by systemd. Without `NOTIFY_SOCKET` every call does nothing.
 */
import { DgramSocket } from 'node-unix-socket';
import type { Logger } from '../log/logger.ts';

export interface Notifier {
  ready(status: string): void;
  stopping(): void;
  status(text: string): void;
  /** Stops the watchdog pings and closes the socket. */
  close(): void;
}

const silent: Notifier = Object.freeze({
  ready: () => {},
  stopping: () => {},
  status: () => {},
  close: () => {},
});

/** The socket path systemd gave; `@name` is an abstract socket. */
function socketPath(value: string): string {
  return value.startsWith('@') ? `\0${value.slice(1)}` : value;
}

/** How often to ping, or undefined when systemd asked for no watchdog (or not of us). */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env['WATCHDOG_USEC']);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  const forPid = env['WATCHDOG_PID'];
  if (forPid !== undefined && Number(forPid) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2_000));
}

export function createNotifier(log: Logger, env: NodeJS.ProcessEnv = process.env): Notifier {
  const target = env['NOTIFY_SOCKET'];
  if (!target) return silent;
  const path = socketPath(target);
  const socket = new DgramSocket();
  socket.on('error', (error: unknown) => log.warn({ err: error }, 'systemd:notify-failed'));
  const send = (text: string) => {
    const message = Buffer.from(text);
    try {
      socket.sendTo(message, 0, message.length, path);
    } catch (error) {
      log.warn({ err: error }, 'systemd:notify-failed');
    }
  };
  let pinger: NodeJS.Timeout | undefined;
  const intervalMs = watchdogIntervalMs(env);
  if (intervalMs !== undefined) {
    pinger = setInterval(() => send('WATCHDOG=1'), intervalMs);
    pinger.unref();
  }
  return {
    ready: (status) => send(`READY=1\nSTATUS=${status}\nMAINPID=${process.pid}`),
    stopping: () => send('STOPPING=1\nSTATUS=draining'),
    status: (text) => send(`STATUS=${text}`),
    close: () => {
      clearInterval(pinger);
      socket.close();
    },
  };
}
