/**
 * The log watch on real files written by the test: lines appended, a log
 * rotated by rename and by copytruncate, an agent restarted before and after
 * a rotation. Every failed-login line carries its own number, so a lost or
 * repeated line shows in the counts.
 */
import {
  appendFile,
  copyFile,
  readdir,
  readFile,
  rename,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Detector } from '../../../src/agent/detectors/detector.ts';
import { createLogWatch } from '../../../src/agent/detectors/log-watch.ts';
import { compileRules, loadRuleFile } from '../../../src/agent/detectors/rules.ts';
import { removeScratch, scratchDirectory, type TestContext, testContext } from './context.ts';

let scratch: string;
let state: string;
let log: string;
let open: Detector[];

beforeEach(async () => {
  scratch = await scratchDirectory('logwatch');
  state = join(scratch, 'state');
  log = join(scratch, 'auth.log');
  open = [];
});

afterEach(async () => {
  for (const detector of open) await detector.close();
  await removeScratch(scratch);
});

/** One failed-login line per number: the count rule below fires on each one. */
const failure = (n: number) =>
  `Dec  3 10:00:00 host sshd[${n}]: Failed password for root from 198.51.100.${n} port 22 ssh2\n`;
const failures = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => failure(from + i)).join('');

/** A rule that fires on every failed login, so each line is one report. */
const everyLine = compileRules({
  version: 1,
  rules: [
    {
      name: 'each-failure',
      threat_type: 'test.ssh_failure',
      severity: 3,
      title: 'failure {n}',
      patterns: ['sshd\\[(?<n>\\d+)\\]: Failed password'],
    },
  ],
});

async function watch(context: TestContext, rules = everyLine): Promise<Detector> {
  const detector = await createLogWatch({ path: log, rules }, context);
  open.push(detector);
  return detector;
}

const numbers = (context: TestContext) =>
  context.reports.map((report) => Number(report.title.replace('failure ', '')));

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('the log watch', () => {
  it('starts at the end of an existing log and reports only lines written after', async () => {
    await writeFile(log, failures(1, 3));
    const context = testContext(state);
    const detector = await watch(context);
    await detector.poll();
    expect(context.reports).toEqual([]);

    await appendFile(log, failures(4, 5));
    await detector.poll();
    expect(numbers(context)).toEqual([4, 5]);
  });

  it('waits for a half-written line to be finished before reading it', async () => {
    await writeFile(log, '');
    const context = testContext(state);
    const detector = await watch(context);
    await detector.poll();
    const line = failure(7);
    await appendFile(log, line.slice(0, 30));
    await detector.poll();
    expect(context.reports).toEqual([]);
    await appendFile(log, line.slice(30));
    await detector.poll();
    expect(numbers(context)).toEqual([7]);
  });

  it('reads a renamed log to its end, once more for a late writer, then the new log', async () => {
    await writeFile(log, '');
    const context = testContext(state);
    const detector = await watch(context);
    await detector.poll();
    await appendFile(log, failures(1, 3));
    await detector.poll();

    await appendFile(log, failures(4, 5));
    await rename(log, `${log}.1`);
    await appendFile(`${log}.1`, failure(6));
    await writeFile(log, failures(7, 8));
    await detector.poll();
    await appendFile(`${log}.1`, failure(9));
    await appendFile(log, failure(10));
    await detector.poll();

    expect(numbers(context).sort((a, b) => a - b)).toEqual(range(1, 10));
    expect(context.messages()).toContain('watch:file_rotated');
  });

  it('reads the lines a copytruncate rotation moved to the copy, once each', async () => {
    await writeFile(log, '');
    const context = testContext(state);
    const detector = await watch(context);
    await detector.poll();
    await appendFile(log, failures(1, 3));
    await detector.poll();

    await appendFile(log, failures(4, 6));
    await copyFile(log, `${log}.1`);
    await truncate(log, 0);
    await appendFile(log, failures(7, 8));
    await detector.poll();
    await appendFile(log, failure(9));
    await detector.poll();

    expect(numbers(context)).toEqual(range(1, 9));
    expect(context.messages()).toContain('watch:file_truncated');
  });

  it('notices a truncated log that grew past the old position before the poll', async () => {
    await writeFile(log, '');
    const context = testContext(state);
    const detector = await watch(context);
    await detector.poll();
    await appendFile(log, failures(1, 2));
    await detector.poll();

    await writeFile(log, failures(10, 14));
    await detector.poll();
    expect(numbers(context)).toEqual([1, 2, 10, 11, 12, 13, 14]);
  });

  it('resumes after a restart where it stopped, without repeating a line', async () => {
    await writeFile(log, '');
    const first = testContext(state);
    const before = await watch(first);
    await before.poll();
    await appendFile(log, failures(1, 3));
    await before.poll();
    await before.close();

    await appendFile(log, failures(4, 5));
    const second = testContext(state);
    const after = await watch(second);
    await after.poll();
    expect(numbers(first)).toEqual([1, 2, 3]);
    expect(numbers(second)).toEqual([4, 5]);
    expect(second.messages()).toContain('watch:resumed');
  });

  it('after a restart reads the tail of a log rotated while it was stopped', async () => {
    await writeFile(log, '');
    const first = testContext(state);
    const before = await watch(first);
    await before.poll();
    await appendFile(log, failures(1, 2));
    await before.poll();
    await before.close();

    await appendFile(log, failures(3, 4));
    await rename(log, `${log}.1`);
    await writeFile(log, failures(5, 6));
    const second = testContext(state);
    const after = await watch(second);
    await after.poll();
    expect(numbers(second)).toEqual([3, 4, 5, 6]);
    expect(second.messages()).toContain('watch:reading_rotated_tail');
  });

  it('after a restart reads the tail of a log copytruncated while it was stopped', async () => {
    await writeFile(log, '');
    const first = testContext(state);
    const before = await watch(first);
    await before.poll();
    await appendFile(log, failures(1, 2));
    await before.poll();
    await before.close();

    await appendFile(log, failures(3, 4));
    await copyFile(log, `${log}.1`);
    await truncate(log, 0);
    await appendFile(log, failure(5));
    const second = testContext(state);
    const after = await watch(second);
    await after.poll();
    expect(numbers(second)).toEqual([3, 4, 5]);
  });

  it('gives a line read again after a crash the same report id', async () => {
    await writeFile(log, '');
    const first = testContext(state);
    const before = await watch(first);
    await before.poll();
    const names = await readdir(join(state, 'detectors'));
    const progressFile = names.find((name) => name.startsWith('log-'));
    const saved = await readFile(join(state, 'detectors', progressFile!), 'utf8');
    await appendFile(log, failures(1, 2));
    await before.poll();
    await before.close();

    // The crash: the reports reached the outbox, the progress file did not move.
    await writeFile(join(state, 'detectors', progressFile!), saved);
    const second = testContext(state);
    const after = await watch(second);
    await after.poll();
    expect(second.reports.map((report) => report.id)).toEqual(
      first.reports.map((report) => report.id),
    );
  });

  it('reports SSH failures from one address once the shipped threshold is reached', async () => {
    await writeFile(log, '');
    const context = testContext(state);
    const detector = await watch(context, await loadRuleFile());
    await detector.poll();
    const at = (second: number) => new Date(context.clock.now() - 60_000 + second * 1_000);
    const line = (second: number, source: string) =>
      `${at(second).toISOString()} host sshd[900]: Failed password for root from ${source} ` +
      'port 50022 ssh2\n';

    await appendFile(log, [1, 2, 3, 4].map((s) => line(s, '203.0.113.7')).join(''));
    await appendFile(log, line(5, '192.0.2.1'));
    await detector.poll();
    expect(context.reports).toEqual([]);

    await appendFile(log, line(6, '203.0.113.7'));
    await detector.poll();
    expect(context.reports).toHaveLength(1);
    expect(context.reports[0]).toMatchObject({
      threat_type: 'auth.ssh.bruteforce',
      severity: 7,
      title: 'Repeated SSH authentication failures from 203.0.113.7',
      details: {
        detector: 'log_watch',
        rule: 'ssh-auth-failures',
        file: log,
        count: 5,
        within_s: 600,
        fields: { source: '203.0.113.7', user: 'root' },
      },
    });
  });

  it('masks a secret in the matching line before it leaves the host', async () => {
    await writeFile(log, '');
    const rules = compileRules({
      version: 1,
      rules: [
        {
          name: 'db-login',
          threat_type: 'test.db_login',
          severity: 4,
          title: 'database login failed',
          patterns: ['login failed'],
        },
      ],
    });
    const context = testContext(state);
    const detector = await watch(context, rules);
    await detector.poll();
    await appendFile(
      log,
      'app: login failed for dsn postgres://app:hunter2@db/x password=hunter2\n',
    );
    await detector.poll();
    const details = JSON.stringify(context.reports[0]?.details);
    expect(details).toContain('login failed');
    expect(details).not.toContain('hunter2');
  });

  it('reads a log that appears after it started from the log’s first line', async () => {
    const context = testContext(state);
    const detector = await watch(context);
    await detector.poll();
    await writeFile(log, failures(1, 2));
    await detector.poll();
    expect(numbers(context)).toEqual([1, 2]);
  });
});
