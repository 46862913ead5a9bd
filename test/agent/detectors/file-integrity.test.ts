/**
 * The file-integrity watch on real files the test changes, chmods, removes
 * and recreates, with the baseline kept in a real state directory across a
 * restart of the detector.
 */
import { createHash } from 'node:crypto';
import { appendFile, chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Detector } from '../../../src/agent/detectors/detector.ts';
import {
  createFileIntegrity,
  integrityFileName,
} from '../../../src/agent/detectors/file-integrity.ts';
import { removeScratch, scratchDirectory, type TestContext, testContext } from './context.ts';

let scratch: string;
let state: string;
let watched: string;

beforeEach(async () => {
  scratch = await scratchDirectory('integrity');
  state = join(scratch, 'state');
  watched = join(scratch, 'hosts');
  await writeFile(watched, '127.0.0.1 localhost\n', { mode: 0o644 });
  await chmod(watched, 0o644);
});

afterEach(async () => {
  await removeScratch(scratch);
});

async function integrity(context: TestContext, paths = [watched]): Promise<Detector> {
  return createFileIntegrity({ paths }, context);
}

const types = (context: TestContext) => context.reports.map((report) => report.threat_type);

describe('the file-integrity watch', () => {
  it('records a baseline on first sight without reporting anything', async () => {
    const context = testContext(state);
    await (await integrity(context)).poll();
    expect(context.reports).toEqual([]);
    const baseline = JSON.parse(
      await readFile(join(state, 'detectors', integrityFileName), 'utf8'),
    );
    expect(baseline.files[watched]).toMatchObject({
      present: true,
      sha256: createHash('sha256').update('127.0.0.1 localhost\n').digest('hex'),
      mode: 0o644,
    });
  });

  it('reports a content change once, with the hashes before and after', async () => {
    const context = testContext(state);
    const detector = await integrity(context);
    await detector.poll();
    await appendFile(watched, '203.0.113.9 bank.example\n');
    await detector.poll();
    await detector.poll();

    expect(types(context)).toEqual(['integrity.file_modified']);
    const details = context.reports[0]!.details as Record<string, any>;
    expect(details).toMatchObject({ path: watched, change: 'modified', changed: ['content'] });
    expect(details['before'].sha256).not.toBe(details['after'].sha256);
    expect(context.reports[0]!.title).toBe(`Watched file modified: ${watched}`);
  });

  it('reports a permission change, more severe when it lets anyone write', async () => {
    const context = testContext(state);
    const detector = await integrity(context);
    await detector.poll();
    await chmod(watched, 0o600);
    await detector.poll();
    await chmod(watched, 0o666);
    await detector.poll();

    expect(types(context)).toEqual([
      'integrity.permissions_changed',
      'integrity.permissions_changed',
    ]);
    expect(context.reports.map((report) => report.severity)).toEqual([6, 8]);
    expect(context.reports[1]!.details).toMatchObject({
      changed: ['mode'],
      before: { mode: '0600' },
      after: { mode: '0666' },
    });
  });

  it('reports a removal and a recreation, each once', async () => {
    const context = testContext(state);
    const detector = await integrity(context);
    await detector.poll();
    await rm(watched);
    await detector.poll();
    await detector.poll();
    await writeFile(watched, 'replaced\n');
    await detector.poll();
    await detector.poll();
    expect(types(context)).toEqual(['integrity.file_removed', 'integrity.file_created']);
  });

  it('takes an editor’s atomic replace with the same content as no change', async () => {
    const context = testContext(state);
    const detector = await integrity(context);
    await detector.poll();
    const copy = join(scratch, '.hosts.swp');
    await writeFile(copy, await readFile(watched));
    await chmod(copy, 0o644);
    await rename(copy, watched);
    await detector.poll();
    expect(context.reports).toEqual([]);
  });

  it('does not report a change again after a restart, and reports the next one', async () => {
    const first = testContext(state);
    const before = await integrity(first);
    await before.poll();
    await writeFile(watched, 'first change\n');
    await before.poll();

    const second = testContext(state);
    const after = await integrity(second);
    await after.poll();
    expect(second.reports).toEqual([]);

    await writeFile(watched, 'second change\n');
    await after.poll();
    expect(types(second)).toEqual(['integrity.file_modified']);
    expect(second.reports[0]!.id).not.toBe(first.reports[0]!.id);
  });

  it('reports a change made while the agent was stopped when it starts again', async () => {
    const first = testContext(state);
    await (await integrity(first)).poll();
    await writeFile(watched, 'changed while stopped\n');

    const second = testContext(state);
    await (await integrity(second)).poll();
    expect(types(second)).toEqual(['integrity.file_modified']);
  });

  it('reports a file that did not exist at the baseline once it appears', async () => {
    const later = join(scratch, 'authorized_keys');
    const context = testContext(state);
    const detector = await integrity(context, [later]);
    await detector.poll();
    await writeFile(later, 'ssh-ed25519 AAAA attacker\n');
    await detector.poll();
    expect(types(context)).toEqual(['integrity.file_created']);
  });
});
