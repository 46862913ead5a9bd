/**
 * The durable outbox: every report the agent has taken in and the server has
 * not yet acknowledged, one file per report in `<state>/outbox/`. A file is
 * written atomically before the report is sent and deleted only after the
 * server's `ack`, so a crash or restart loses nothing and resends in order.
 *
 * File names are `<sequence>-<report id>.json` with a zero-padded sequence,
 * so that name order is intake order. Reports the server declares invalid
 * are moved to `outbox/rejected/` rather than deleted, for an operator.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDirectory, temporarySuffix, writeFileAtomic } from './atomic-file.ts';
import { ClientError } from './errors.ts';
import { type ThreatReport, threatReportSchema } from './report.ts';

export interface OutboxSettings {
  /** Intake is refused beyond this many unacknowledged reports. */
  readonly maxReports: number;
}

export const outboxDefaults: OutboxSettings = Object.freeze({ maxReports: 10_000 });

/** Something in the outbox directory that could not be read back. */
export interface OutboxDamage {
  readonly file: string;
  readonly reason: string;
}

interface Entry {
  readonly sequence: number;
  readonly file: string;
  readonly report: ThreatReport;
}

const entryNamePattern = /^(\d{16})-([0-9a-f-]{36})\.json$/i;
const sequenceWidth = 16;

/** Reports waiting for the server's acknowledgement, kept on disk in order. */
export class Outbox {
  readonly directory: string;
  readonly #settings: OutboxSettings;
  readonly #entries = new Map<string, Entry>();
  #nextSequence = 1;
  #writes: Promise<unknown> = Promise.resolve();

  private constructor(directory: string, settings: OutboxSettings) {
    this.directory = directory;
    this.#settings = settings;
  }

  /**
   * Opens (creating if needed) the outbox in `directory`, removes interrupted
   * writes, and loads what is pending. Files that cannot be read back are set
   * aside in `rejected/` and listed in `damaged`.
   */
  static async open(
    directory: string,
    settings: Partial<OutboxSettings> = {},
  ): Promise<{ outbox: Outbox; damaged: OutboxDamage[] }> {
    const outbox = new Outbox(directory, { ...outboxDefaults, ...settings });
    try {
      await mkdir(directory, { recursive: true, mode: 0o700 });
      const damaged = await outbox.#load();
      return { outbox, damaged };
    } catch (error) {
      throw new ClientError('state_unusable', {
        message: `cannot open the outbox ${directory}: ${(error as Error).message}`,
        cause: error,
      });
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** Pending reports, oldest first. */
  pending(): ThreatReport[] {
    return [...this.inOrder()];
  }

  /**
   * Pending reports, oldest first, without copying: entries are kept in
   * intake order (loaded in name order, then appended), so a reader can stop
   * after the few it needs. Do not hold it across an `await`.
   */
  *inOrder(): Generator<ThreatReport> {
    for (const entry of this.#entries.values()) yield entry.report;
  }

  /**
   * Stores a report durably. Resolves once it is on disk; a report whose id
   * is already pending is not stored twice. Throws `outbox_full` at the limit.
   */
  add(report: ThreatReport): Promise<void> {
    return this.#serialize(async () => {
      if (this.#entries.has(report.id)) return;
      if (this.#entries.size >= this.#settings.maxReports) {
        throw new ClientError('outbox_full', {
          details: { maxReports: this.#settings.maxReports },
        });
      }
      const sequence = this.#nextSequence++;
      const file = `${String(sequence).padStart(sequenceWidth, '0')}-${report.id}.json`;
      await writeFileAtomic(join(this.directory, file), JSON.stringify(report) + '\n', 0o600);
      this.#entries.set(report.id, { sequence, file, report });
    });
  }

  /** Forgets an acknowledged report; `false` when it was not pending. */
  acknowledge(id: string): Promise<boolean> {
    return this.#serialize(async () => {
      const entry = this.#entries.get(id);
      if (!entry) return false;
      await rm(join(this.directory, entry.file), { force: true });
      await syncDirectory(this.directory);
      this.#entries.delete(id);
      return true;
    });
  }

  /** Moves a report the server will never accept out of the way, keeping it on disk. */
  reject(id: string): Promise<boolean> {
    return this.#serialize(async () => {
      const entry = this.#entries.get(id);
      if (!entry) return false;
      await this.#setAside(entry.file);
      this.#entries.delete(id);
      return true;
    });
  }

  /** Runs file operations one at a time, so that order on disk is order of calls. */
  #serialize<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#writes.then(operation);
    this.#writes = result.catch(() => {});
    return result;
  }

  async #load(): Promise<OutboxDamage[]> {
    const damaged: OutboxDamage[] = [];
    const names = (await readdir(this.directory, { withFileTypes: true }))
      .filter((dirent) => dirent.isFile())
      .map((dirent) => dirent.name)
      .sort();

    for (const name of names) {
      if (name.endsWith(temporarySuffix)) {
        await rm(join(this.directory, name), { force: true });
        continue;
      }
      const reason = await this.#loadEntry(name);
      if (reason !== undefined) {
        await this.#setAside(name);
        damaged.push({ file: name, reason });
      }
    }
    return damaged;
  }

  /** Loads one file; answers why it is unusable, or `undefined` when loaded. */
  async #loadEntry(name: string): Promise<string | undefined> {
    const match = entryNamePattern.exec(name);
    if (!match) return 'the file name is not an outbox entry';

    const sequence = Number(match[1]);
    let report: ThreatReport;
    try {
      const text = await readFile(join(this.directory, name), 'utf8');
      report = threatReportSchema.parse(JSON.parse(text));
    } catch (error) {
      return `the report cannot be read: ${(error as Error).message.slice(0, 200)}`;
    }
    if (report.id.toLowerCase() !== match[2]?.toLowerCase()) {
      return 'the report id does not match the file name';
    }
    if (this.#entries.has(report.id)) return 'a report with this id is already pending';

    this.#entries.set(report.id, { sequence, file: name, report });
    this.#nextSequence = Math.max(this.#nextSequence, sequence + 1);
    return undefined;
  }

  async #setAside(name: string): Promise<void> {
    const rejected = join(this.directory, 'rejected');
    await mkdir(rejected, { recursive: true, mode: 0o700 });
    await rename(join(this.directory, name), join(rejected, name));
    await syncDirectory(this.directory);
    await syncDirectory(rejected);
  }
}
