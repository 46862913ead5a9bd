/**
 * The enrollment secret file: read when the agent needs a secret, and, when
 * it was given but cannot be used, the reason the agent stops names the file
 * and what went wrong with it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnrollmentSecretFile } from '../../src/agent/enroll.ts';
import { isClientError } from '../../src/agent/errors.ts';

const node = join(process.cwd(), 'node_modules', '.bin', 'node');
const main = join(process.cwd(), 'src', 'main.ts');

let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'citadel-secret-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('readEnrollmentSecretFile', () => {
  it('reads the secret without the surrounding whitespace', async () => {
    const file = join(directory, 'secret');
    await writeFile(file, '  ces_abc_def\n');
    expect(await readEnrollmentSecretFile(file)).toBe('ces_abc_def');
  });

  it('has no secret when no file was given', async () => {
    expect(await readEnrollmentSecretFile(undefined)).toBeUndefined();
  });

  it('throws no_enrollment_secret naming a missing file and the reason', async () => {
    const file = join(directory, 'missing');
    const error = await readEnrollmentSecretFile(file).catch((caught: unknown) => caught);
    expect(isClientError(error, 'no_enrollment_secret')).toBe(true);
    expect((error as Error).message).toContain(`the enrollment secret file ${file} cannot be read`);
    expect((error as Error).message).toContain('ENOENT');
  });

  it('throws no_enrollment_secret naming an empty file', async () => {
    const file = join(directory, 'empty');
    await writeFile(file, '\n');
    const error = await readEnrollmentSecretFile(file).catch((caught: unknown) => caught);
    expect(isClientError(error, 'no_enrollment_secret')).toBe(true);
    expect((error as Error).message).toBe(`the enrollment secret file ${file} is empty`);
  });
});

describe('citadel-archer agent with a wrong --enroll-secret-file', () => {
  it('exits 1 saying the file cannot be read, not that the option is missing', async () => {
    const file = join(directory, 'no-such-secret');
    const args = [
      main,
      'agent',
      '--server',
      'https://127.0.0.1:1',
      '--pin',
      `sha256:${'0'.repeat(64)}`,
      '--state-dir',
      join(directory, 'state'),
      '--enroll-secret-file',
      file,
    ];
    const outcome = await new Promise<{ status: number; stderr: string }>((resolve) => {
      const child = execFile(
        node,
        args,
        { env: { PATH: process.env['PATH'] } },
        (error, _, stderr) => resolve({ status: error ? Number(error.code) : 0, stderr }),
      );
      child.stdin?.end();
    });
    expect(outcome.status).toBe(1);
    const last = outcome.stderr.trim().split('\n').at(-1);
    expect(last).toMatch(/^error no_enrollment_secret: the enrollment secret file /);
    expect(last).toContain(`${file} cannot be read: ENOENT`);
    expect(outcome.stderr).not.toContain('pass --enroll-secret-file');
  });
});
