import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDetectors } from '../../../src/agent/detectors/create-detectors.ts';
import { isClientError } from '../../../src/agent/errors.ts';
import { removeScratch, scratchDirectory, testContext } from './context.ts';

let scratch: string;

beforeEach(async () => {
  scratch = await scratchDirectory('create');
});

afterEach(async () => {
  await removeScratch(scratch);
});

const none = { watchFiles: [], integrityPaths: [], listeners: false };

describe('creating the detectors from the options', () => {
  it('creates one log watch per file, one integrity watch and the listener watch', async () => {
    const context = testContext(join(scratch, 'state'));
    const detectors = await createDetectors(
      {
        watchFiles: [join(scratch, 'a.log'), join(scratch, 'b.log')],
        integrityPaths: [join(scratch, 'x'), join(scratch, 'y')],
        listeners: true,
      },
      context,
    );
    expect(detectors.map((detector) => detector.name)).toEqual([
      'log_watch',
      'log_watch',
      'file_integrity',
      'listeners',
    ]);
  });

  it('creates none when no detector was asked for', async () => {
    expect(await createDetectors(none, testContext(join(scratch, 'state')))).toEqual([]);
  });

  it('refuses --rules without --watch-file as a usage mistake', async () => {
    const refused = await createDetectors(
      { ...none, rulesFile: join(scratch, 'rules.json') },
      testContext(join(scratch, 'state')),
    ).catch((error: unknown) => error);
    expect(isClientError(refused, 'invalid_option')).toBe(true);
  });

  it('refuses --listeners where /proc/net cannot be read, with detector_unavailable', async () => {
    const refused = await createDetectors(
      { ...none, listeners: true, procRoot: join(scratch, 'no-proc') },
      testContext(join(scratch, 'state')),
    ).catch((error: unknown) => error);
    expect(isClientError(refused, 'detector_unavailable')).toBe(true);
  });
});
