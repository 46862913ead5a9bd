import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClientError } from '../../src/agent/errors.ts';
import type { ThreatReport } from '../../src/agent/report.ts';
import { followReportFile, readReportStream } from '../../src/agent/report-intake.ts';

let scratch: string;
let logLines: Array<Record<string, unknown>>;

beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'citadel-intake-'));
  logLines = [];
});

afterEach(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function capturingLogger() {
  const destination = {
    write(line: string) {
      logLines.push(JSON.parse(line));
    },
  };
  return pino({ level: 'info' }, destination);
}

const line = (title: string, severity = 5) =>
  JSON.stringify({ threat_type: 'test', severity, title }) + '\n';

describe('readReportStream', () => {
  it('submits each valid line and logs each invalid one with its line number', async () => {
    const taken: ThreatReport[] = [];
    const input = Readable.from([
      Buffer.from(line('a') + 'nonsense\n\n' + line('b', 42) + line('c')),
    ]);
    await readReportStream(input, {
      submit: async (report) => {
        taken.push(report);
      },
      logger: capturingLogger(),
      signal: new AbortController().signal,
    });
    expect(taken.map((report) => report.title)).toEqual(['a', 'c']);
    const invalid = logLines.filter((entry) => entry['msg'] === 'intake:invalid_line');
    expect(invalid.map((entry) => entry['line'])).toEqual([2, 4]);
  });

  it('holds the producer back while the outbox is full, then submits', async () => {
    let refusals = 2;
    const taken: string[] = [];
    await readReportStream(Readable.from([Buffer.from(line('patient'))]), {
      submit: async (report) => {
        if (refusals-- > 0) throw new ClientError('outbox_full');
        taken.push(report.title);
      },
      logger: capturingLogger(),
      signal: new AbortController().signal,
      fullOutboxWaitMs: 10,
    });
    expect(taken).toEqual(['patient']);
  });
});

describe('followReportFile', () => {
  it('follows appended lines and resumes after the last line taken when restarted', async () => {
    const file = join(scratch, 'reports.jsonl');
    await writeFile(file, line('one') + line('two'));
    const taken: string[] = [];
    const follow = (signal: AbortSignal) =>
      followReportFile(file, {
        submit: async (report) => {
          taken.push(report.title);
        },
        logger: capturingLogger(),
        signal,
        stateDirectory: scratch,
        pollIntervalMs: 10,
      });

    const first = new AbortController();
    const running = follow(first.signal);
    await expect.poll(() => taken).toEqual(['one', 'two']);
    await appendFile(file, line('three') + '{"threat_type":"te');
    await expect.poll(() => taken).toEqual(['one', 'two', 'three']);
    first.abort();
    await running;

    await appendFile(file, 'st","severity":1,"title":"four"}\n');
    const second = new AbortController();
    const resumed = follow(second.signal);
    await expect.poll(() => taken).toEqual(['one', 'two', 'three', 'four']);
    second.abort();
    await resumed;
  });

  it('reads a file from its start again after it was truncated', async () => {
    const file = join(scratch, 'rotating.jsonl');
    await writeFile(file, line('old-1') + line('old-2'));
    const taken: string[] = [];
    const controller = new AbortController();
    const running = followReportFile(file, {
      submit: async (report) => {
        taken.push(report.title);
      },
      logger: capturingLogger(),
      signal: controller.signal,
      stateDirectory: scratch,
      pollIntervalMs: 10,
    });
    await expect.poll(() => taken).toHaveLength(2);
    await writeFile(file, line('new'));
    await expect.poll(() => taken).toEqual(['old-1', 'old-2', 'new']);
    controller.abort();
    await running;
  });
});
