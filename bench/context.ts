/**
 * What every figure of a run shares: the profile, the benchmark database,
 * the provisioned credentials, the run's working directory, and how to
 * start the daemon the same way each time.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AgentCredential } from './bench-agent.ts';
import type { BenchDatabase } from './database.ts';
import type { Profile } from './profiles.ts';
import { type RunningServer, startDaemon } from './servers.ts';

/** Credentials provisioned for the run, by the use they are put to. */
export interface CredentialPools {
  /** Bench cost 4: the held fleet (figure 1), heartbeats (5), the cost-4 storm (4). */
  readonly fleet: readonly AgentCredential[];
  readonly ingest: readonly AgentCredential[];
  readonly feed: readonly AgentCredential[];
  /** Production cost 10: the storm at the real verification cost (4). */
  readonly production: readonly AgentCredential[];
}

export interface RunContext {
  readonly profile: Profile;
  readonly db: BenchDatabase;
  readonly workDir: string;
  /** The data directory of the daemon on the benchmark database. */
  readonly dataDir: string;
  readonly credentials: CredentialPools;
  /** Extra V8 flags for every daemon, e.g. `--cpu-prof`. */
  readonly daemonExecArgv: readonly string[];
  /** The command line that reproduces a figure, for the report. */
  readonly command: string;
}

/** Starts the daemon on the benchmark database with the run's settings. */
export function startBenchDaemon(
  context: RunContext,
  settings: {
    heartbeatIntervalS: number;
    port?: number;
    label: string;
    env?: Readonly<Record<string, string>>;
  },
): Promise<RunningServer> {
  return startDaemon({
    dataDir: context.dataDir,
    databaseUrl: context.db.url,
    heartbeatIntervalS: settings.heartbeatIntervalS,
    logFile: path.join(context.workDir, `daemon-${settings.label}.log`),
    execArgv: context.daemonExecArgv,
    ...(settings.env ? { env: settings.env } : {}),
    ...(settings.port === undefined ? {} : { port: settings.port }),
  });
}

/** The daemon's development certificate, which the load generators trust. */
export function daemonCa(context: RunContext): string {
  return readFileSync(path.join(context.dataDir, 'tls', 'cert.pem'), 'utf8');
}

/** The bootstrap admin token the daemon wrote on its first start. */
export function adminToken(context: RunContext): string {
  return readFileSync(path.join(context.dataDir, 'bootstrap', 'admin-token'), 'utf8').trim();
}

/** Progress lines go to stderr so that stdout stays clean. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
