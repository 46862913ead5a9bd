/**
 * Follows a log file across rotation and truncation, one `poll()` at a time,
 * handing each complete line to a callback exactly once.
 *
 * The file being read is an incarnation: a device, an inode, a position (the
 * end of the last complete line taken) and a fingerprint (a SHA-256 of its
 * first bytes). At each poll:
 * - the same inode, shorter than the position or with another fingerprint,
 *   was truncated in place (copytruncate): the lines written before the cut
 *   are read from the rotated copy beside it when one carries the
 *   fingerprint, then the file is read again from its start;
 * - the same inode otherwise is read on from the position;
 * - another inode, or none, means the file was renamed away: the old
 *   incarnation is read to its end (and again at the next poll, for a writer
 *   still finishing its last lines), then the new file is read from its
 *   start.
 *
 * Progress (incarnation and position) is saved after each batch of lines, so
 * a restarted agent resumes where it stopped, also when the file was rotated
 * meanwhile: the rotated file is found beside it by inode or fingerprint and
 * read to its end first. A file seen for the first time is taken from its
 * end: an existing log's history is not news.
 */
import { createHash } from 'node:crypto';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { LineSplitter } from '../line-splitter.ts';
import { loadStateFile, saveStateFile } from './detector-state.ts';

/** One complete line and where it came from. */
export interface FollowedLine {
  readonly text: string;
  /** The byte just past the line's newline, in the file it came from. */
  readonly endOffset: number;
  /** `dev:ino` of the file it came from. */
  readonly fileId: string;
}

export interface LogFollowerSettings {
  /** Absolute path of the followed file. */
  readonly path: string;
  /** Where progress is saved. */
  readonly progressFile: string;
  readonly logger: Logger;
  /** Takes one line; the follower waits for it and retries the line if it throws. */
  readonly onLine: (line: FollowedLine) => Promise<void>;
  readonly chunkBytes?: number;
}

interface Incarnation {
  readonly handle: FileHandle;
  readonly dev: number;
  readonly ino: number;
  position: number;
  headLength: number;
  headSha256: string;
}

const progressSchema = z.object({
  path: z.string(),
  dev: z.number(),
  ino: z.number(),
  offset: z.number().int().min(0),
  head_length: z.number().int().min(0),
  head_sha256: z.string(),
});

type Progress = z.infer<typeof progressSchema>;

/** Bytes at the start of a file that identify it across renames and copies. */
const fingerprintBytes = 1_024;
/** A copy is recognised by its fingerprint only when this much of it is known. */
const minimumFingerprintBytes = 64;
const defaultChunkBytes = 64 * 1_024;
const maxBytesPerPoll = 16 * 1_024 * 1_024;
const compressedSuffix = /\.(?:gz|bz2|xz|zst|lz4|z)$/i;
const maxRotatedCandidates = 64;

/** Follows one log file; see the module comment for how it reads. */
export class LogFollower {
  readonly #settings: LogFollowerSettings;
  readonly #chunkBytes: number;
  #current: Incarnation | undefined;
  #retired: Incarnation | undefined;
  #started = false;

  constructor(settings: LogFollowerSettings) {
    this.#settings = settings;
    this.#chunkBytes = settings.chunkBytes ?? defaultChunkBytes;
  }

  /** Reads what is new since the last poll, handing each line to `onLine`. */
  async poll(): Promise<void> {
    if (!this.#started) {
      await this.#resume();
      this.#started = true;
    }
    await this.#drainRetired();

    const info = await statFile(this.#settings.path);
    const current = this.#current;
    if (current && info && info.dev === current.dev && info.ino === current.ino) {
      if (await this.#wasTruncated(current, info.size)) await this.#restartAfterTruncation(current);
      await this.#drain(current, false);
      return;
    }
    if (current) await this.#retire(current);
    if (!info) return;
    this.#current = await this.#openAt(info, 0);
    await this.#drain(this.#current, false);
  }

  /** Closes the open files. */
  async close(): Promise<void> {
    await this.#current?.handle.close();
    await this.#retired?.handle.close();
    this.#current = undefined;
    this.#retired = undefined;
    this.#started = false;
  }

  /** First poll: resume from saved progress, else start at the end of the file. */
  async #resume(): Promise<void> {
    const log = this.#settings.logger;
    const saved = await loadStateFile(this.#settings.progressFile, progressSchema, log);
    const info = await statFile(this.#settings.path);
    const usable = saved?.path === this.#settings.path ? saved : undefined;

    if (!usable) {
      if (!info) {
        log.info({ path: this.#settings.path }, 'watch:waiting_for_file');
        return;
      }
      this.#current = await this.#openAt(info, await endOfLastLine(this.#settings.path, info.size));
      await this.#refreshFingerprint(this.#current);
      await this.#saveProgress(this.#current);
      log.info(
        { path: this.#settings.path, offset: this.#current.position },
        'watch:started_at_end',
      );
      return;
    }

    if (info && info.dev === usable.dev && info.ino === usable.ino) {
      const candidate = await this.#openAt(info, usable.offset, usable);
      if (!(await this.#wasTruncated(candidate, info.size))) {
        this.#current = candidate;
        log.info({ path: this.#settings.path, offset: usable.offset }, 'watch:resumed');
        return;
      }
      await candidate.handle.close();
    }
    await this.#readRotatedTail(usable);
    if (info) this.#current = await this.#openAt(info, 0);
  }

  async #wasTruncated(incarnation: Incarnation, size: number): Promise<boolean> {
    if (size < incarnation.position) return true;
    if (incarnation.headLength === 0) return false;
    const head = await readHead(incarnation.handle, incarnation.headLength);
    return head.sha256 !== incarnation.headSha256 || head.length < incarnation.headLength;
  }

  async #restartAfterTruncation(current: Incarnation): Promise<void> {
    this.#settings.logger.info(
      { path: this.#settings.path, offset: current.position },
      'watch:file_truncated',
    );
    await this.#readRotatedTail(progressOf(this.#settings.path, current));
    current.position = 0;
    current.headLength = 0;
    current.headSha256 = '';
    await this.#saveProgress(current);
  }

  /** The file was renamed away: read it to its end now, and once more next poll. */
  async #retire(current: Incarnation): Promise<void> {
    this.#settings.logger.info({ path: this.#settings.path }, 'watch:file_rotated');
    await this.#drain(current, false);
    await this.#retired?.handle.close();
    this.#retired = current;
    this.#current = undefined;
  }

  async #drainRetired(): Promise<void> {
    const retired = this.#retired;
    if (!retired) return;
    await this.#drain(retired, true, false);
    await retired.handle.close();
    this.#retired = undefined;
  }

  /**
   * Finds the rotated file that held the saved incarnation (same inode, or a
   * copy with the same fingerprint) and reads it from the saved position.
   */
  async #readRotatedTail(saved: Progress): Promise<void> {
    const rotated = await findRotated(this.#settings.path, saved);
    if (!rotated) {
      this.#settings.logger.warn(
        { path: this.#settings.path, offset: saved.offset },
        'watch:rotated_file_not_found',
      );
      return;
    }
    this.#settings.logger.info(
      { path: this.#settings.path, rotated: rotated.path, offset: saved.offset },
      'watch:reading_rotated_tail',
    );
    const handle = await open(rotated.path, 'r');
    const incarnation: Incarnation = {
      handle,
      dev: rotated.dev,
      ino: rotated.ino,
      position: saved.offset,
      headLength: saved.head_length,
      headSha256: saved.head_sha256,
    };
    try {
      await this.#drain(incarnation, true, false);
    } finally {
      await handle.close();
    }
  }

  /**
   * Reads from the position to the end of the file, handing over complete
   * lines; `final` also hands over a last line without a newline.
   */
  async #drain(incarnation: Incarnation, final: boolean, save = true): Promise<void> {
    const buffer = Buffer.alloc(this.#chunkBytes);
    const splitter = new LineSplitter(incarnation.position);
    const fileId = `${incarnation.dev}:${incarnation.ino}`;
    const startedAt = incarnation.position;
    let readAt = startedAt;
    for (;;) {
      const { bytesRead } = await incarnation.handle.read(buffer, 0, buffer.length, readAt);
      const lines = bytesRead > 0 ? splitter.push(buffer.subarray(0, bytesRead)) : [];
      if (bytesRead === 0 && final) lines.push(...splitter.end());
      for (const line of lines) {
        if (line.kind === 'line') {
          await this.#settings.onLine({ text: line.text, endOffset: line.endOffset, fileId });
        } else {
          this.#settings.logger.warn(
            { path: this.#settings.path, endOffset: line.endOffset },
            'watch:line_too_long',
          );
        }
        incarnation.position = line.endOffset;
      }
      if (lines.length > 0 && save) {
        await this.#refreshFingerprint(incarnation);
        await this.#saveProgress(incarnation);
      }
      if (bytesRead === 0) return;
      readAt += bytesRead;
      // A file growing faster than it is read must not hold the poll forever.
      if (!final && readAt - startedAt >= maxBytesPerPoll) return;
    }
  }

  async #refreshFingerprint(incarnation: Incarnation): Promise<void> {
    const wanted = Math.min(incarnation.position, fingerprintBytes);
    if (wanted <= incarnation.headLength) return;
    const head = await readHead(incarnation.handle, wanted);
    incarnation.headLength = head.length;
    incarnation.headSha256 = head.sha256;
  }

  async #openAt(
    info: { dev: number; ino: number },
    position: number,
    known?: Progress,
  ): Promise<Incarnation> {
    const handle = await open(this.#settings.path, 'r');
    const incarnation: Incarnation = {
      handle,
      dev: info.dev,
      ino: info.ino,
      position,
      headLength: known?.head_length ?? 0,
      headSha256: known?.head_sha256 ?? '',
    };
    return incarnation;
  }

  async #saveProgress(incarnation: Incarnation): Promise<void> {
    await saveStateFile(this.#settings.progressFile, progressOf(this.#settings.path, incarnation));
  }
}

function progressOf(path: string, incarnation: Incarnation): Progress {
  return {
    path,
    dev: incarnation.dev,
    ino: incarnation.ino,
    offset: incarnation.position,
    head_length: incarnation.headLength,
    head_sha256: incarnation.headSha256,
  };
}

async function statFile(path: string) {
  try {
    const info = await stat(path);
    return info.isFile() ? info : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function readHead(
  handle: FileHandle,
  length: number,
): Promise<{ length: number; sha256: string }> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, 0);
  const sha256 = createHash('sha256').update(buffer.subarray(0, bytesRead)).digest('hex');
  return { length: bytesRead, sha256 };
}

/** The offset just past the last newline, so that a half-written last line is read whole. */
async function endOfLastLine(path: string, size: number): Promise<number> {
  if (size === 0) return 0;
  const handle = await open(path, 'r');
  try {
    const span = Math.min(size, defaultChunkBytes);
    const buffer = Buffer.alloc(span);
    const { bytesRead } = await handle.read(buffer, 0, span, size - span);
    const newline = buffer.subarray(0, bytesRead).lastIndexOf(0x0a);
    return newline === -1 ? size : size - span + newline + 1;
  } finally {
    await handle.close();
  }
}

/**
 * A sibling named like the log (`auth.log.1`, `secure-20250101`) that is the
 * saved incarnation: the same inode (renamed), or a copy whose first bytes
 * carry the saved fingerprint and which reaches the saved position.
 */
async function findRotated(
  path: string,
  saved: Progress,
): Promise<{ path: string; dev: number; ino: number } | undefined> {
  const directory = dirname(path);
  const name = basename(path);
  const names = (await readdir(directory).catch(() => [] as string[]))
    .filter((entry) => entry !== name && entry.startsWith(name) && !compressedSuffix.test(entry))
    .sort()
    .slice(0, maxRotatedCandidates);

  let copy: { path: string; dev: number; ino: number } | undefined;
  for (const entry of names) {
    const candidate = join(directory, entry);
    const info = await statFile(candidate).catch(() => undefined);
    if (!info || info.size < saved.offset) continue;
    const found = { path: candidate, dev: info.dev, ino: info.ino };
    const renamed = info.dev === saved.dev && info.ino === saved.ino;
    if (renamed && saved.head_length === 0) return found;
    if (saved.head_length === 0) continue;
    const head = await fingerprintOf(candidate, saved.head_length);
    if (head !== saved.head_sha256) continue;
    if (renamed) return found;
    if (saved.head_length >= minimumFingerprintBytes) copy ??= found;
  }
  return copy;
}

async function fingerprintOf(path: string, length: number): Promise<string | undefined> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const head = await readHead(handle, length);
    return head.length === length ? head.sha256 : undefined;
  } finally {
    await handle.close();
  }
}
