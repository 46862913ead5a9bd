/**
 * The claim on a data directory, in process: a held claim refuses others,
 * and a claim whose holder is gone, was reborn under its pid, predates the
 * boot or (from another pid namespace or host) stopped its heartbeat is
 * taken over.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  claimDataDir,
  type DataDirClaim,
  type LockHolder,
  lockFileName,
  staleAfterMs,
} from '../../src/daemon/data-dir-lock.ts';
import { type CitadelError, isCitadelError } from '../../src/errors/catalogue.ts';
import { createLogger, type Logger, silentLogger } from '../../src/log/logger.ts';

const held: DataDirClaim[] = [];

afterEach(() => {
  for (const claim of held.splice(0)) claim.release();
});

/** A logger whose lines the test can read back. */
function recordingLogger(): { log: Logger; lines: () => any[] } {
  let text = '';
  const destination = {
    write(chunk: string) {
      text += chunk;
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  const log = createLogger({ level: 'info', pretty: false, destination });
  const lines = () => text.split('\n').filter((line) => line.length > 0);
  return { log, lines: () => lines().map((line) => JSON.parse(line)) };
}

async function claim(dataDir: string, log = recordingLogger().log): Promise<DataDirClaim> {
  const claimed = await claimDataDir({ dataDir, command: 'serve', log });
  held.push(claimed);
  return claimed;
}

async function refusal(dataDir: string): Promise<CitadelError> {
  const error = await claimDataDir({ dataDir, command: 'serve', log: recordingLogger().log }).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!isCitadelError(error)) throw new Error(`expected a refusal, got ${String(error)}`);
  return error;
}

function freshDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'citadel-lock-'));
}

function lockOf(dataDir: string): LockHolder {
  return JSON.parse(readFileSync(path.join(dataDir, lockFileName), 'utf8')) as LockHolder;
}

/** This process's own lock, read back from a throwaway directory: a template for others. */
async function ownLock(): Promise<LockHolder> {
  const dataDir = freshDir();
  const claimed = await claimDataDir({ dataDir, command: 'serve', log: silentLogger() });
  const lock = lockOf(dataDir);
  claimed.release();
  return lock;
}

/** Writes a lock as another process would have made it. */
async function plantLock(dataDir: string, changes: Partial<LockHolder>): Promise<void> {
  const planted = { ...(await ownLock()), instance: 'planted', ...changes };
  writeFileSync(path.join(dataDir, lockFileName), `${JSON.stringify(planted)}\n`);
}

function staleLogLine(lines: any[]): any {
  return lines.find((line) => line.msg.startsWith('data-dir:stale-lock-removed'));
}

describe('the claim on a data directory', () => {
  it('writes the lock file with this pid and removes it at release', async () => {
    const dataDir = freshDir();
    const claimed = await claim(dataDir);
    expect(lockOf(dataDir)).toMatchObject({ pid: process.pid, command: 'serve' });
    claimed.release();
    expect(existsSync(path.join(dataDir, lockFileName))).toBe(false);
  });

  it('refuses a second claim while one is held, naming the pid and the directory', async () => {
    const dataDir = freshDir();
    await claim(dataDir);
    const error = await refusal(dataDir);
    expect(error.code).toBe('data_dir_in_use');
    expect(error.message).toContain(dataDir);
    expect(error.message).toContain(`pid ${process.pid}`);
    expect(lockOf(dataDir).pid).toBe(process.pid);
  });

  it('takes over a lock whose process has exited, and says so in the log', async () => {
    const dataDir = freshDir();
    const exited = spawnSync('true').pid;
    await plantLock(dataDir, { pid: exited });
    const recorder = recordingLogger();
    await claim(dataDir, recorder.log);
    expect(lockOf(dataDir).pid).toBe(process.pid);
    expect(staleLogLine(recorder.lines())).toMatchObject({
      pid: exited,
      reason: 'its process has exited',
    });
  });

  it('takes over a lock whose pid now belongs to a process started at another time', async () => {
    const dataDir = freshDir();
    await plantLock(dataDir, { pid: process.ppid, processStart: '1' });
    const recorder = recordingLogger();
    await claim(dataDir, recorder.log);
    expect(lockOf(dataDir).pid).toBe(process.pid);
    expect(staleLogLine(recorder.lines()).reason).toBe('its pid now belongs to another process');
  });

  it('takes over a lock made before the machine last booted', async () => {
    const dataDir = freshDir();
    await plantLock(dataDir, { pid: process.pid, bootId: 'an-earlier-boot' });
    await claim(dataDir);
    expect(lockOf(dataDir).instance).not.toBe('planted');
  });

  it('judges a lock from another pid namespace by its heartbeat', async () => {
    const dataDir = freshDir();
    await plantLock(dataDir, { pid: 7, pidNamespace: 'pid:[1]' });
    expect((await refusal(dataDir)).message).toContain('pid 7');

    const untouched = new Date(Date.now() - staleAfterMs - 1_000);
    utimesSync(path.join(dataDir, lockFileName), untouched, untouched);
    await claim(dataDir);
    expect(lockOf(dataDir).pid).toBe(process.pid);
  });

  it('judges a lock from another host by its heartbeat, not by its boot', async () => {
    const dataDir = freshDir();
    await plantLock(dataDir, { host: 'elsewhere', bootId: 'another-machine' });
    expect((await refusal(dataDir)).message).toContain('on elsewhere');
  });

  it('takes over a lock file that names no holder', async () => {
    const dataDir = freshDir();
    writeFileSync(path.join(dataDir, lockFileName), '');
    await claim(dataDir);
    expect(lockOf(dataDir).pid).toBe(process.pid);
  });

  it('leaves the lock file in place at release once it names another holder', async () => {
    const dataDir = freshDir();
    const claimed = await claim(dataDir);
    await plantLock(dataDir, { pid: process.ppid });
    claimed.release();
    expect(lockOf(dataDir).instance).toBe('planted');
  });
});
