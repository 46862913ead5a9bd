/**
 * Runs the real daemon as a child process (`node src/main.ts serve`), on
 * ephemeral ports, and reads its JSON log lines to learn them. The log is
 * kept whole so tests can search it (for secrets that must not be there).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const projectRoot = path.resolve(import.meta.dirname, '../..');

export interface RunningDaemon {
  readonly process: ChildProcess;
  readonly dataDir: string;
  readonly httpsPort: number;
  readonly httpPort: number;
  readonly baseUrl: string;
  readonly ca: string;
  /** Every line the daemon wrote to stdout and stderr so far. */
  log(): string;
  /** Log lines parsed as JSON. */
  entries(): Array<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves when a log line whose `msg` starts with the prefix appears. */
  waitForLog(prefix: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
}

export interface DaemonLaunch {
  readonly databaseUrl?: string;
  readonly dataDir?: string;
  readonly env?: Record<string, string>;
  readonly readyTimeoutMs?: number;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `citadel-${prefix}-`));
}

export async function startDaemon(launch: DaemonLaunch = {}): Promise<RunningDaemon> {
  const dataDir = launch.dataDir ?? tempDir('data');
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '/root',
    CITADEL_DATA_DIR: dataDir,
    CITADEL_LISTEN: '127.0.0.1:0',
    CITADEL_HTTP_LISTEN: '127.0.0.1:0',
    LOG_LEVEL: 'debug',
    // Suites enroll many agents from 127.0.0.1 and try many bad tokens; the
    // budgets suite sets the contract's own limits and tests them.
    CITADEL_ENROLL_BUDGET_PER_HOUR: '100000',
    CITADEL_AUTH_FAILURES_PER_10_MIN: '100000',
    ...(launch.databaseUrl ? { DATABASE_URL: launch.databaseUrl } : {}),
    ...launch.env,
  };
  const child = spawn(process.execPath, [path.join(projectRoot, 'src/main.ts'), 'serve'], {
    cwd: projectRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const waiters: Array<{ prefix: string; resolve: (entry: Record<string, unknown>) => void }> = [];
  const onLine = (line: string) => {
    output += `${line}\n`;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    for (const waiter of [...waiters]) {
      if (typeof entry['msg'] === 'string' && entry['msg'].startsWith(waiter.prefix)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(entry);
      }
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
  }
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const waitForLog = (prefix: string, timeoutMs = 30_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(`no log "${prefix}" within ${timeoutMs} ms; log:\n${output.slice(-4000)}`),
        );
      }, timeoutMs);
      waiters.push({
        prefix,
        resolve: (entry) => {
          clearTimeout(timer);
          resolve(entry);
        },
      });
    });

  const ready = await Promise.race([
    waitForLog('daemon:ready', launch.readyTimeoutMs ?? 90_000),
    exited.then((code) => {
      throw new Error(`daemon exited with ${code} before it was ready:\n${output.slice(-4000)}`);
    }),
  ]);
  const httpsPort = ready['httpsPort'] as number;
  return {
    process: child,
    dataDir,
    httpsPort,
    httpPort: ready['httpPort'] as number,
    baseUrl: `https://127.0.0.1:${httpsPort}`,
    ca: readFileSync(env['TLS_CERT_FILE'] ?? path.join(dataDir, 'tls', 'cert.pem'), 'utf8'),
    log: () => output,
    entries: () =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    waitForLog,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

export function bootstrapSecret(daemon: RunningDaemon): string {
  return readFileSync(path.join(daemon.dataDir, 'bootstrap', 'enrollment-secret'), 'utf8').trim();
}

export function bootstrapAdminToken(daemon: RunningDaemon): string {
  return readFileSync(path.join(daemon.dataDir, 'bootstrap', 'admin-token'), 'utf8').trim();
}
