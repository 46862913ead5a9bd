/**
 * `--integrity PATH…`: a baseline of each watched file (SHA-256 of its
 * content, mode, owner, group) kept in `<state>/detectors/integrity.json`.
 * A poll compares each file with its baseline; a difference is one threat,
 * after which the baseline moves to what was seen, so a change is reported
 * once and not again after a restart.
 *
 * Changes: `modified` (content, perhaps with permissions), `permissions`
 * (mode, owner or group alone), `removed`, `created` (a file absent from its
 * baseline appeared). The first sight of a file records its baseline without
 * a threat. The content is hashed again only when the inode, size, mtime or
 * ctime moved (ctime cannot be set back by a user); a file that changes
 * while it is hashed is looked at again at the next poll instead of
 * reporting a half-written state.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Detector, DetectorContext } from './detector.ts';
import { detectorDirectory, loadStateFile, saveStateFile } from './detector-state.ts';
import { derivedReportId, emitDetection } from './emit.ts';

export interface FileIntegritySettings {
  readonly paths: readonly string[];
  readonly intervalMs?: number;
}

export const fileIntegrityDefaults = Object.freeze({ intervalMs: 2_000 });

export const integrityFileName = 'integrity.json';

const entrySchema = z.object({
  /** Counts the changes reported for the path; part of each report's id. */
  generation: z.number().int().min(0),
  present: z.boolean(),
  sha256: z.string().optional(),
  mode: z.number().int().optional(),
  uid: z.number().int().optional(),
  gid: z.number().int().optional(),
  size: z.number().optional(),
  dev: z.string().optional(),
  ino: z.string().optional(),
  mtime_ns: z.string().optional(),
  ctime_ns: z.string().optional(),
});

const baselineSchema = z.object({
  version: z.literal(1),
  files: z.record(z.string(), entrySchema),
});

type Entry = z.infer<typeof entrySchema>;
type Observation = Omit<Entry, 'generation'>;
type ChangeKind = 'modified' | 'permissions' | 'removed' | 'created';

interface Change {
  readonly kind: ChangeKind;
  readonly fields: readonly string[];
}

const threatTypes: Record<ChangeKind, string> = {
  modified: 'integrity.file_modified',
  permissions: 'integrity.permissions_changed',
  removed: 'integrity.file_removed',
  created: 'integrity.file_created',
};

const severities: Record<ChangeKind, number> = {
  modified: 7,
  permissions: 6,
  removed: 8,
  created: 6,
};

const titles: Record<ChangeKind, string> = {
  modified: 'Watched file modified',
  permissions: 'Watched file permissions changed',
  removed: 'Watched file removed',
  created: 'Watched file created',
};

/** Creates the integrity detector for a set of files. */
export async function createFileIntegrity(
  settings: FileIntegritySettings,
  context: DetectorContext,
): Promise<Detector> {
  const paths = [...new Set(settings.paths.map((path) => resolve(path)))];
  const baselineFile = join(await detectorDirectory(context.stateDirectory), integrityFileName);
  const logger = context.logger.child({ detector: 'file_integrity' });
  const watch = new IntegrityWatch(paths, baselineFile, logger, context);
  return {
    name: 'file_integrity',
    intervalMs: settings.intervalMs ?? fileIntegrityDefaults.intervalMs,
    poll: () => watch.poll(),
    close: async () => {},
  };
}

class IntegrityWatch {
  readonly #paths: readonly string[];
  readonly #baselineFile: string;
  readonly #log: Logger;
  readonly #context: DetectorContext;
  #files: Record<string, Entry> | undefined;
  readonly #unreadable = new Set<string>();

  constructor(
    paths: readonly string[],
    baselineFile: string,
    log: Logger,
    context: DetectorContext,
  ) {
    this.#paths = paths;
    this.#baselineFile = baselineFile;
    this.#log = log;
    this.#context = context;
  }

  async poll(): Promise<void> {
    this.#files ??= await this.#loadBaseline();
    for (const path of this.#paths) await this.#check(path, this.#files);
  }

  async #loadBaseline(): Promise<Record<string, Entry>> {
    const saved = await loadStateFile(this.#baselineFile, baselineSchema, this.#log);
    return saved?.files ?? {};
  }

  async #check(path: string, files: Record<string, Entry>): Promise<void> {
    const before = files[path];
    const observed = await this.#observe(path, before);
    if (!observed) return;

    if (!before) {
      files[path] = { generation: 0, ...observed };
      await this.#save(files);
      const fields = { path, present: observed.present, sha256: observed.sha256 };
      this.#log.info(fields, 'integrity:baseline_recorded');
      return;
    }

    const change = compare(before, observed);
    const next: Entry = { ...before, ...observed, generation: before.generation };
    if (!change) {
      if (!sameStat(before, observed)) {
        files[path] = next;
        await this.#save(files);
      }
      return;
    }

    const generation = before.generation + 1;
    const report = await emitDetection(
      {
        id: derivedReportId('integrity', path, String(generation)),
        threat_type: threatTypes[change.kind],
        severity: severityOf(change, before, observed),
        title: `${titles[change.kind]}: ${path}`,
        details: {
          detector: 'file_integrity',
          path,
          change: change.kind,
          changed: change.fields,
          before: describe(before),
          after: describe(next),
        },
        detectedAtMs: this.#context.clock.now(),
      },
      this.#context,
    );
    if (!report) return;
    files[path] = { ...next, generation };
    await this.#save(files);
    this.#log.warn({ path, change: change.kind, reportId: report.id }, 'integrity:change_detected');
  }

  /** What the path looks like now; `undefined` when it cannot be told this poll. */
  async #observe(path: string, before: Entry | undefined): Promise<Observation | undefined> {
    const first = await statOf(path);
    if (!first) return { ...(before ?? {}), present: false };

    let sha256 = before?.sha256;
    if (!before?.present || !sameStat(before, first) || sha256 === undefined) {
      try {
        sha256 = first.isFile ? await hashFile(path) : undefined;
      } catch (error) {
        this.#noteUnreadable(path, error);
        return undefined;
      }
      const second = await statOf(path);
      if (!second || !sameStat(second, first)) return undefined;
    }
    this.#unreadable.delete(path);
    const { isFile: _isFile, ...fields } = first;
    return { ...fields, ...(sha256 === undefined ? {} : { sha256 }) };
  }

  #noteUnreadable(path: string, error: unknown): void {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EISDIR') throw error;
    if (this.#unreadable.has(path)) return;
    this.#unreadable.add(path);
    this.#log.warn({ path, code }, 'integrity:file_unreadable');
  }

  async #save(files: Record<string, Entry>): Promise<void> {
    await saveStateFile(this.#baselineFile, { version: 1, files });
  }
}

/** The difference that matters between a baseline and an observation, if any. */
function compare(before: Entry, now: Observation): Change | undefined {
  if (before.present && !now.present) return { kind: 'removed', fields: ['present'] };
  if (!before.present && now.present) return { kind: 'created', fields: ['present'] };
  if (!now.present) return undefined;

  const fields: string[] = [];
  if (before.sha256 !== now.sha256) fields.push('content');
  if (before.mode !== now.mode) fields.push('mode');
  if (before.uid !== now.uid) fields.push('owner');
  if (before.gid !== now.gid) fields.push('group');
  if (fields.length === 0) return undefined;
  return { kind: fields.includes('content') ? 'modified' : 'permissions', fields };
}

/** A file made writable by anyone, or given set-id bits, is worse than other changes. */
function severityOf(change: Change, before: Entry, now: Observation): number {
  const base = severities[change.kind];
  if (!now.present || now.mode === undefined) return base;
  const previous = before.present ? (before.mode ?? 0) : 0;
  const gained = now.mode & ~previous;
  const dangerous = 0o002 | 0o4000 | 0o2000;
  return gained & dangerous ? Math.max(base, 8) : base;
}

function sameStat(a: Observation, b: Observation): boolean {
  return (
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtime_ns === b.mtime_ns &&
    a.ctime_ns === b.ctime_ns &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid
  );
}

function describe(entry: Observation): Record<string, unknown> {
  if (!entry.present) return { present: false };
  return {
    present: true,
    sha256: entry.sha256 ?? null,
    mode: entry.mode === undefined ? null : `0${(entry.mode & 0o7777).toString(8)}`,
    uid: entry.uid ?? null,
    gid: entry.gid ?? null,
    size: entry.size ?? null,
  };
}

async function statOf(path: string): Promise<(Observation & { isFile: boolean }) | undefined> {
  try {
    const info = await stat(path, { bigint: true });
    return {
      present: true,
      isFile: info.isFile(),
      mode: Number(info.mode & 0o7777n),
      uid: Number(info.uid),
      gid: Number(info.gid),
      size: Number(info.size),
      dev: String(info.dev),
      ino: String(info.ino),
      mtime_ns: String(info.mtimeNs),
      ctime_ns: String(info.ctimeNs),
    };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
