/**
 * The systemd notification protocol, for `Type=notify` units: `READY=1` once
 * the daemon can serve (listeners bound, database answering, migrations
 * applied), `STOPPING=1` when shutdown starts, and `WATCHDOG=1` pings sent
 * from the event loop at half of `WATCHDOG_USEC`, so a wedged loop is
 * restarted by systemd. Without `NOTIFY_SOCKET` every call does nothing.
 *
 * Node cannot send a Unix datagram itself, and the npm packages that can are
 * native addons (one of them not installable with `npm ci`). So messages go
 * through the `systemd-notify` tool that ships with systemd, with `--pid` set
 * to the daemon (the unit says `NotifyAccess=all`). It waits until systemd
 * has read each message, so systemd never meets a message from a process
 * that has already exited.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../log/logger.ts';

export interface Notifier {
  ready(status: string): void;
  stopping(): void;
  status(text: string): void;
  /** Stops the watchdog pings. */
  close(): void;
}

const silent: Notifier = Object.freeze({
  ready: () => {},
  stopping: () => {},
  status: () => {},
  close: () => {},
});

/** How often to ping, or undefined when systemd asked for no watchdog (or not of us). */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | undefined {
  const usec = Number(env['WATCHDOG_USEC']);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  const forPid = env['WATCHDOG_PID'];
  if (forPid !== undefined && Number(forPid) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2_000));
}

export function createNotifier(log: Logger, env: NodeJS.ProcessEnv = process.env): Notifier {
  if (!env['NOTIFY_SOCKET']) return silent;
  let warned = false;
  const send = (args: string[]) => {
    execFile('systemd-notify', [`--pid=${process.pid}`, ...args], { timeout: 5_000 }, (error) => {
      if (!error || warned) return;
      warned = true;
      log.warn({ err: error }, 'systemd:notify-failed; is systemd-notify installed?');
    });
  };
  let pinger: NodeJS.Timeout | undefined;
  const intervalMs = watchdogIntervalMs(env);
  if (intervalMs !== undefined) {
    pinger = setInterval(() => send(['WATCHDOG=1']), intervalMs);
    pinger.unref();
  }
  return {
    ready: (status) => send(['--ready', `--status=${status}`]),
    stopping: () => send(['--status=draining', 'STOPPING=1']),
    status: (text) => send([`--status=${text}`]),
    close: () => clearInterval(pinger),
  };
}
