/**
 * Detectors keep what they have seen (log positions, file baselines, known
 * listeners) as small JSON files in `<state>/detectors/`, written atomically
 * with mode 0600. A file that cannot be parsed is treated as absent after a
 * warning: a detector then starts a fresh baseline rather than stopping the
 * agent, and the damaged file is kept beside it for an operator.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.ts';

export const detectorDirectoryName = 'detectors';

/** The detectors' directory inside the agent's state directory, created 0700. */
export async function detectorDirectory(stateDirectory: string): Promise<string> {
  const directory = join(stateDirectory, detectorDirectoryName);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  return directory;
}

/** A file name that stands for a path without spelling it: `<prefix>-<hash>.json`. */
export function stateFileNameFor(prefix: string, path: string): string {
  const digest = createHash('sha256').update(path).digest('hex').slice(0, 16);
  return `${prefix}-${digest}.json`;
}

/** Reads and checks a state file; `undefined` when absent or damaged (set aside, logged). */
export async function loadStateFile<T>(
  path: string,
  schema: z.ZodType<T>,
  logger: Logger,
): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return schema.parse(JSON.parse(text));
  } catch (error) {
    const aside = `${path}.damaged`;
    await rename(path, aside);
    logger.warn(
      { file: path, aside, reason: (error as Error).message.slice(0, 200) },
      'detector:state_damaged',
    );
    return undefined;
  }
}

/** Writes a state file atomically and durably, mode 0600. */
export async function saveStateFile(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value)}\n`, 0o600);
}
