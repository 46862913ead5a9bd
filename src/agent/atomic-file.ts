/**
 * Durable file writes. A file is written whole or not at all: the bytes go to
 * a temporary sibling, are flushed to disk, and the sibling is renamed over
 * the target; the directory is then flushed so that the rename itself
 * survives a power cut. Readers never see a half-written file.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Suffix of temporary files; anything carrying it is an interrupted write. */
export const temporarySuffix = '.tmp';

/** Writes `data` to `path` atomically and durably, with file mode `mode`. */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode = 0o600,
): Promise<void> {
  const directory = dirname(path);
  const nonce = randomBytes(6).toString('hex');
  const temporary = join(directory, `.${basename(path)}.${nonce}${temporarySuffix}`);

  const handle = await open(temporary, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temporary, { force: true });
    throw error;
  }
  await handle.close();

  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await syncDirectory(directory);
}

/** Flushes a directory's entries (creations, renames, deletions) to disk. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
