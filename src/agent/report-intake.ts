/**
 * Where reports come from: JSON lines on a stream (standard input) or in a
 * file the agent follows as it grows. Each valid line goes to the outbox
 * before the next is read, so a slow or unreachable server slows the
 * producer instead of growing memory. Invalid lines are logged and skipped.
 *
 * A followed file's progress (inode and byte offset) is kept in the state
 * directory, so that a restarted agent neither loses nor repeats lines. A
 * file that shrinks or is replaced is read again from its start.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { z } from 'zod';
import { writeFileAtomic } from './atomic-file.ts';
import { isClientError } from './errors.ts';
import { type Line, LineSplitter } from './line-splitter.ts';
import { parseReportLine, type ThreatReport } from './report.ts';

export interface IntakeSettings {
  /** Stores a report durably; may throw `outbox_full`. */
  readonly submit: (report: ThreatReport) => Promise<void>;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly now?: () => number;
  /** How long to wait before offering a report again to a full outbox. */
  readonly fullOutboxWaitMs?: number;
}

export interface FollowSettings extends IntakeSettings {
  readonly stateDirectory: string;
  readonly pollIntervalMs?: number;
}

export const progressFileName = 'report-file.json';

const progressSchema = z.object({ path: z.string(), ino: z.number(), offset: z.number().int() });

/** Reads reports from a stream until it ends or the signal aborts. */
export async function readReportStream(stream: Readable, settings: IntakeSettings): Promise<void> {
  const splitter = new LineSplitter();
  for await (const chunk of stream) {
    if (settings.signal.aborted) return;
    for (const line of splitter.push(chunk as Buffer)) await takeLine(line, settings);
  }
  for (const line of splitter.end()) await takeLine(line, settings);
}

/** Follows a report file, from where an earlier run stopped, until the signal aborts. */
export async function followReportFile(path: string, settings: FollowSettings): Promise<void> {
  const absolute = resolve(path);
  const pollMs = settings.pollIntervalMs ?? 1_000;
  let start = await loadProgress(absolute, settings.stateDirectory);

  while (!settings.signal.aborted) {
    const info = await stat(absolute).catch(() => undefined);
    if (!info) {
      await pause(pollMs, settings.signal);
      continue;
    }
    const offset =
      start !== undefined && start.ino === info.ino && start.offset <= info.size ? start.offset : 0;
    await readFollowing(absolute, info.ino, offset, settings, pollMs);
    start = undefined;
  }
}

/** Reads one incarnation of the file until it is replaced, shrinks, or the signal aborts. */
async function readFollowing(
  path: string,
  ino: number,
  offset: number,
  settings: FollowSettings,
  pollMs: number,
): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const splitter = new LineSplitter(offset);
    let position = offset;
    while (!settings.signal.aborted) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead > 0) {
        position += bytesRead;
        for (const line of splitter.push(buffer.subarray(0, bytesRead))) {
          await takeLine(line, settings);
          await saveProgress(settings.stateDirectory, { path, ino, offset: line.endOffset });
        }
        continue;
      }
      await pause(pollMs, settings.signal);
      const now = await stat(path).catch(() => undefined);
      if (now && (now.ino !== ino || now.size < position)) {
        settings.logger.info({ path }, 'intake:file_replaced');
        return;
      }
    }
  } finally {
    await handle.close();
  }
}

async function takeLine(line: Line, settings: IntakeSettings): Promise<void> {
  if (line.kind === 'too_long') {
    settings.logger.warn({ line: line.number }, 'intake:line_too_long');
    return;
  }
  if (line.text.trim() === '') return;

  let report: ThreatReport;
  try {
    report = parseReportLine(line.text, settings.now);
  } catch (error) {
    if (!isClientError(error, 'invalid_report')) throw error;
    settings.logger.warn({ line: line.number, reason: error.message }, 'intake:invalid_line');
    return;
  }
  await submitPatiently(report, settings);
}

/** Offers a report until the outbox takes it: a full outbox holds the producer back. */
async function submitPatiently(report: ThreatReport, settings: IntakeSettings): Promise<void> {
  let warned = false;
  while (!settings.signal.aborted) {
    try {
      await settings.submit(report);
      return;
    } catch (error) {
      if (!isClientError(error, 'outbox_full')) throw error;
      if (!warned) settings.logger.warn({ reportId: report.id }, 'intake:outbox_full');
      warned = true;
      await pause(settings.fullOutboxWaitMs ?? 1_000, settings.signal);
    }
  }
}

async function loadProgress(
  path: string,
  stateDirectory: string,
): Promise<{ ino: number; offset: number } | undefined> {
  try {
    const text = await readFile(join(stateDirectory, progressFileName), 'utf8');
    const progress = progressSchema.parse(JSON.parse(text));
    return progress.path === path ? progress : undefined;
  } catch {
    return undefined;
  }
}

async function saveProgress(stateDirectory: string, progress: z.infer<typeof progressSchema>) {
  await writeFileAtomic(join(stateDirectory, progressFileName), JSON.stringify(progress), 0o600);
}

async function pause(delayMs: number, signal: AbortSignal): Promise<void> {
  await sleep(delayMs, undefined, { signal }).catch(() => {});
}
