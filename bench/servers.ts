/**
 * Starting the processes under measurement: the daemon (through
 * `daemon-host.ts`) on the benchmark database or the embedded one, and the
 * bare `ws` server. Each writes its output to a log file in the run's
 * working directory, not to a pipe the harness would have to drain.
 */
import { openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ChildHandle } from './ipc.ts';
import type { ProbeReading } from './probe.ts';

const benchDir = import.meta.dirname;

/** A probe reading plus the sessions the server holds. */
export type ServerReading = ProbeReading & { readonly sessions: number };

/** A measured server process. */
export interface RunningServer {
  readonly child: ChildHandle;
  readonly port: number;
  /** Milliseconds from fork to ready, as the harness saw it. */
  readonly readyMs: number;
  probe(collect?: boolean): Promise<ServerReading>;
  resetLoopDelay(): Promise<void>;
  /** The graceful stop (the daemon's two-stage shutdown, first stage). */
  stop(): Promise<void>;
}

export interface DaemonLaunch {
  readonly dataDir: string;
  readonly logFile: string;
  /** The external database; unset means the embedded one. */
  readonly databaseUrl?: string;
  readonly port?: number;
  readonly heartbeatIntervalS: number;
  readonly logLevel?: string;
  /** Extra V8 flags, e.g. `--cpu-prof`. */
  readonly execArgv?: readonly string[];
  /** Extra configuration, e.g. a budget switched off. */
  readonly env?: Readonly<Record<string, string>>;
}

export async function startDaemon(launch: DaemonLaunch): Promise<RunningServer> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    CITADEL_DATA_DIR: launch.dataDir,
    CITADEL_LISTEN: `127.0.0.1:${launch.port ?? 0}`,
    CITADEL_HTTP_LISTEN: 'off',
    CITADEL_HEARTBEAT_INTERVAL_S: String(launch.heartbeatIntervalS),
    LOG_LEVEL: launch.logLevel ?? 'info',
    ...(launch.databaseUrl ? { DATABASE_URL: launch.databaseUrl } : {}),
    ...launch.env,
  };
  return startServer(path.join(benchDir, 'daemon-host.ts'), [], launch.logFile, env, [
    '--expose-gc',
    ...(launch.execArgv ?? []),
  ]);
}

/** The bare server, serving the certificate the daemon generated in `dataDir`. */
export function startBareServer(dataDir: string, logFile: string): Promise<RunningServer> {
  const tls = path.join(dataDir, 'tls');
  const args = [path.join(tls, 'cert.pem'), path.join(tls, 'key.pem')];
  return startServer(path.join(benchDir, 'bare-server.ts'), args, logFile, process.env, [
    '--expose-gc',
  ]);
}

async function startServer(
  modulePath: string,
  args: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv,
  execArgv: readonly string[],
): Promise<RunningServer> {
  const began = performance.now();
  const child = new ChildHandle(modulePath, {
    args,
    env,
    execArgv,
    outputFd: openSync(logFile, 'a'),
  });
  let ready: { httpsPort: number };
  try {
    ready = await Promise.race([
      child.call<{ httpsPort: number }>('ready', {}, 180_000),
      child.exited.then((code) => {
        throw new Error(
          `${path.basename(modulePath)} exited ${code}; see ${logFile}:\n${tail(logFile)}`,
        );
      }),
    ]);
  } catch (error) {
    await child.kill();
    throw error;
  }
  const readyMs = performance.now() - began;
  return {
    child,
    port: ready.httpsPort,
    readyMs,
    probe: (collect = false) => child.call<ServerReading>('probe', { collect }),
    resetLoopDelay: async () => {
      await child.call('resetLoopDelay');
    },
    stop: async () => {
      await child.call('stop', {}, 60_000).catch(() => undefined);
      const exited = await Promise.race([child.exited, pause(30_000).then(() => 'timeout')]);
      if (exited === 'timeout') await child.kill();
    },
  };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

export { freePort } from '../src/net/free-port.ts';

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
