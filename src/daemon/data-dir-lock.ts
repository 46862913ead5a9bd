/**
 * The claim of one process on a data directory. The embedded PostgreSQL
 * cluster, the development certificate and the bootstrap files live there; a
 * second daemon that used them too would stop the first one's database under
 * it. So `serve` (and `migrate` on the embedded database) claims the directory
 * before it touches anything in it, and a second claimant is refused.
 *
 * The claim is the file `<data dir>/daemon.lock`, naming its holder: pid,
 * the process's start time, the boot, the pid namespace, a random instance id.
 * It is written whole under a draft name and then linked into place; the link
 * fails when the file exists, so two processes never both create it. A claim
 * is absent, live (its holder runs) or stale (its holder is gone: kill -9, a
 * power cut). A live claim refuses the newcomer with `data_dir_in_use`; a
 * stale one is removed, with a log line, and claimed afresh. `release()` at a
 * clean stop removes the file.
 *
 * Liveness. A claim made on this machine before its last boot is stale. In
 * the same pid namespace, `/proc/<pid>/stat` says whether the pid still runs
 * and whether it is still the process that made the claim (same start time),
 * so a reused pid does not pass for the daemon. Where the holder cannot be
 * inspected (another host, another pid namespace such as another container, a
 * `/proc` that hides it, no `/proc` at all), its heartbeat decides: a holder
 * touches the file every 10 s, and a claim untouched for 30 s is stale.
 */
import { randomBytes } from 'node:crypto';
import {
  linkSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CitadelError } from '../errors/catalogue.ts';
import type { Logger } from '../log/logger.ts';

export const lockFileName = 'daemon.lock';

/** How often a holder touches its lock file, and how long untouched makes it stale. */
export const heartbeatIntervalMs = 10_000;
export const staleAfterMs = 30_000;

/** A takeover holds its guard for a moment; an older guard was left by a crash. */
const guardAbandonedMs = 5_000;
const maxAttempts = 100;

/** What a lock file says about the process holding the directory. */
export interface LockHolder {
  readonly pid: number;
  readonly instance: string;
  readonly command: string;
  readonly claimedAt: string;
  readonly host: string;
  readonly bootId?: string;
  readonly pidNamespace?: string;
  /** The process's start time, in clock ticks since boot (`/proc/<pid>/stat`). */
  readonly processStart?: string;
}

export interface ClaimOptions {
  readonly dataDir: string;
  /** The command claiming it (`serve`, `migrate`), shown to whoever is refused. */
  readonly command: string;
  readonly log: Logger;
}

interface FoundLock {
  readonly text: string;
  readonly holder: LockHolder | undefined;
}

/** A held claim; `release()` gives the directory back. */
export class DataDirClaim {
  readonly file: string;
  readonly #instance: string;
  readonly #log: Logger;
  readonly #heartbeat: NodeJS.Timeout;
  #touchFailed = false;
  #released = false;

  constructor(file: string, instance: string, log: Logger) {
    this.file = file;
    this.#instance = instance;
    this.#log = log;
    this.#heartbeat = setInterval(() => this.#touch(), heartbeatIntervalMs);
    this.#heartbeat.unref();
  }

  /** Removes the lock file, unless it is no longer this claim's. Safe to call twice. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#heartbeat);
    if (readLock(this.file)?.holder?.instance === this.#instance)
      rmSync(this.file, { force: true });
    this.#log.info({ lockFile: this.file }, 'data-dir:released');
  }

  #touch(): void {
    try {
      const now = new Date();
      utimesSync(this.file, now, now);
      this.#touchFailed = false;
    } catch (error) {
      if (this.#touchFailed) return;
      this.#touchFailed = true;
      this.#log.error(
        { err: error, lockFile: this.file },
        'data-dir:heartbeat-failed; another daemon may take the directory over',
      );
    }
  }
}

/**
 * Claims the data directory (which must exist) for this process.
 * @throws CitadelError `data_dir_in_use` when a live process holds it.
 */
export async function claimDataDir(options: ClaimOptions): Promise<DataDirClaim> {
  const file = path.join(options.dataDir, lockFileName);
  const holder = currentHolder(options.command);
  const draft = `${file}.${holder.instance}`;
  writeFileSync(draft, `${JSON.stringify(holder)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    for (let attempt = 0; attempt < maxAttempts; attempt += 1) {
      if (linked(draft, file)) {
        options.log.info({ lockFile: file }, 'data-dir:claimed');
        return new DataDirClaim(file, holder.instance, options.log);
      }
      const found = readLock(file);
      if (found === undefined) continue;
      const verdict = judge(found.holder, file);
      if (verdict.live) throw inUse(options.dataDir, file, found.holder!);
      await removeStale(file, found, verdict.reason, options.log);
    }
  } finally {
    rmSync(draft, { force: true });
  }
  throw new Error(`could not claim ${options.dataDir}: its lock file ${file} keeps changing`);
}

function currentHolder(command: string): LockHolder {
  const start = processStatus(process.pid);
  return {
    pid: process.pid,
    instance: randomBytes(8).toString('hex'),
    command,
    claimedAt: new Date().toISOString(),
    host: os.hostname(),
    bootId: bootId(),
    pidNamespace: pidNamespace(),
    processStart: typeof start === 'object' ? start.start : undefined,
  };
}

function linked(draft: string, file: string): boolean {
  try {
    linkSync(draft, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** The lock file, or undefined when there is none. */
function readLock(file: string): FoundLock | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return { text, holder: parseHolder(text) };
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    const pid = value.pid;
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined;
    if (typeof value.instance !== 'string') return undefined;
    return value as LockHolder;
  } catch {
    return undefined;
  }
}

interface Verdict {
  readonly live: boolean;
  readonly reason: string;
}

/** Whether the holder named in a lock file still runs. */
function judge(holder: LockHolder | undefined, file: string): Verdict {
  if (!holder) return { live: false, reason: 'the lock file names no holder' };
  // A directory shared with another machine: nothing here can see its processes.
  if (holder.host !== os.hostname()) return byHeartbeat(file);
  const boot = bootId();
  if (holder.bootId && boot && holder.bootId !== boot) {
    return { live: false, reason: 'the machine has restarted since' };
  }
  if (holder.pidNamespace === pidNamespace()) {
    const status = processStatus(holder.pid);
    if (status === 'gone') return { live: false, reason: 'its process has exited' };
    if (status !== undefined && holder.processStart !== undefined) {
      if (status.start === holder.processStart) return { live: true, reason: 'its process runs' };
      return { live: false, reason: 'its pid now belongs to another process' };
    }
  }
  return byHeartbeat(file);
}

function byHeartbeat(file: string): Verdict {
  if (heartbeatAgeMs(file) < staleAfterMs) return { live: true, reason: 'its heartbeat is fresh' };
  return { live: false, reason: 'its heartbeat has stopped' };
}

/**
 * `gone`, the start time of a running process, or undefined when it cannot be
 * inspected (hidden by `/proc`'s mount options, or no `/proc` at all).
 */
function processStatus(pid: number): 'gone' | { start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie has exited; only its parent has not reaped it yet.
    if (fields[0] === 'Z' || fields[0] === 'X') return 'gone';
    return fields[19] ? { start: fields[19] } : undefined;
  } catch {
    // Absent or hidden: the signal below tells which.
  }
  try {
    process.kill(pid, 0);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH' ? 'gone' : undefined;
  }
}

function heartbeatAgeMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

/**
 * Removes a stale lock file, unless it changed since it was judged. A guard
 * file admits one claimant at a time, so that two of them cannot both judge
 * the same stale lock and the slower remove the faster one's fresh claim.
 */
async function removeStale(
  file: string,
  found: FoundLock,
  reason: string,
  log: Logger,
): Promise<void> {
  const guard = `${file}.takeover`;
  try {
    writeFileSync(guard, `${process.pid}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    if (heartbeatAgeMs(guard) > guardAbandonedMs) rmSync(guard, { force: true });
    else await sleep(50);
    return;
  }
  try {
    if (readLock(file)?.text !== found.text) return;
    rmSync(file, { force: true });
    const previous = found.holder;
    log.warn(
      {
        lockFile: file,
        pid: previous?.pid ?? null,
        claimedAt: previous?.claimedAt ?? null,
        reason,
      },
      'data-dir:stale-lock-removed, the process that held the directory is gone',
    );
  } finally {
    rmSync(guard, { force: true });
  }
}

function inUse(dataDir: string, file: string, holder: LockHolder): CitadelError {
  const where = holder.host === os.hostname() ? '' : ` on ${holder.host}`;
  return new CitadelError('data_dir_in_use', {
    message:
      `the data directory ${dataDir} is in use by citadel-archer ${holder.command} ` +
      `(pid ${holder.pid}${where}, since ${holder.claimedAt}); stop that one first, ` +
      'or give this one its own CITADEL_DATA_DIR',
    details: { dataDir, lockFile: file, pid: holder.pid, command: holder.command },
  });
}
