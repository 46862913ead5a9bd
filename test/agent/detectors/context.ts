/** A detector context for tests: reports collected in memory, logs captured, a manual clock. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { DetectorContext } from '../../../src/agent/detectors/detector.ts';
import type { ThreatReport } from '../../../src/agent/report.ts';
import { ManualClock } from '../../../src/clock/clock.ts';

export interface TestContext extends DetectorContext {
  readonly reports: ThreatReport[];
  readonly logs: Array<Record<string, unknown>>;
  readonly clock: ManualClock;
  readonly abort: AbortController;
  /** Log messages (`msg`) in order. */
  messages(): string[];
}

/** A scratch directory removed by the returned function. */
export async function scratchDirectory(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `citadel-${prefix}-`));
}

export async function removeScratch(directory: string): Promise<void> {
  await rm(directory, { recursive: true, force: true });
}

/**
 * A context whose outbox is an array; reports with an id already taken are
 * kept once, as the real outbox and server do.
 */
export function testContext(stateDirectory: string, clock = new ManualClock()): TestContext {
  const reports: ThreatReport[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const abort = new AbortController();
  return {
    reports,
    logs,
    clock,
    abort,
    logger,
    stateDirectory,
    signal: abort.signal,
    submit: async (report) => {
      if (!reports.some((known) => known.id === report.id)) reports.push(report);
    },
    messages: () => logs.map((entry) => String(entry['msg'])),
  };
}
