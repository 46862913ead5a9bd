import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isClientError } from '../../src/agent/errors.ts';
import { Outbox } from '../../src/agent/outbox.ts';
import { parseReportLine, type ThreatReport } from '../../src/agent/report.ts';

let directory: string;

beforeEach(async () => {
  directory = join(await mkdtemp(join(tmpdir(), 'citadel-outbox-')), 'outbox');
});

afterEach(async () => {
  await rm(join(directory, '..'), { recursive: true, force: true });
});

function report(title: string): ThreatReport {
  return parseReportLine(JSON.stringify({ threat_type: 'test', severity: 3, title }));
}

describe('Outbox', () => {
  it('keeps each report in its own private file until it is acknowledged', async () => {
    const { outbox } = await Outbox.open(directory);
    const first = report('first');
    await outbox.add(first);

    const files = await readdir(directory);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^0{15}1-${first.id}\\.json$`));
    expect((await stat(join(directory, files[0]!))).mode & 0o777).toBe(0o600);
    expect((await stat(directory)).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(join(directory, files[0]!), 'utf8'))).toEqual(first);

    expect(await outbox.acknowledge(first.id)).toBe(true);
    expect(await readdir(directory)).toEqual([]);
    expect(outbox.size).toBe(0);
  });

  it('gives back the pending reports in intake order after a restart', async () => {
    const reports = Array.from({ length: 12 }, (_, index) => report(`report ${index}`));
    const { outbox } = await Outbox.open(directory);
    for (const each of reports) await outbox.add(each);
    await outbox.acknowledge(reports[3]!.id);

    const { outbox: reopened, damaged } = await Outbox.open(directory);
    expect(damaged).toEqual([]);
    const expected = reports.filter((_, index) => index !== 3);
    expect(reopened.pending()).toEqual(expected);

    const later = report('after restart');
    await reopened.add(later);
    const { outbox: again } = await Outbox.open(directory);
    expect(again.pending().at(-1)).toEqual(later);
  });

  it('stores a report whose id is already pending only once', async () => {
    const { outbox } = await Outbox.open(directory);
    const once = report('once');
    await outbox.add(once);
    await outbox.add(once);
    expect(await readdir(directory)).toHaveLength(1);
  });

  it('removes interrupted writes and sets aside files it cannot read', async () => {
    const { outbox } = await Outbox.open(directory);
    const good = report('good');
    await outbox.add(good);
    await writeFile(join(directory, '.0000000000000002-x.json.abc.tmp'), '{"half');
    const brokenName = '0000000000000003-6f1c1f0e-8a0e-4c55-9d1e-2b8f3f9d4a11.json';
    await writeFile(join(directory, brokenName), '{"not a report":true}');

    const { outbox: reopened, damaged } = await Outbox.open(directory);
    expect(reopened.pending()).toEqual([good]);
    expect(damaged.map((damage) => damage.file)).toEqual([brokenName]);
    expect(await readdir(join(directory, 'rejected'))).toEqual([brokenName]);
    expect((await readdir(directory)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('moves a rejected report out of the queue but keeps it on disk', async () => {
    const { outbox } = await Outbox.open(directory);
    const refused = report('refused');
    await outbox.add(refused);
    expect(await outbox.reject(refused.id)).toBe(true);
    expect(outbox.pending()).toEqual([]);
    const kept = await readdir(join(directory, 'rejected'));
    expect(kept).toHaveLength(1);
    expect(kept[0]).toContain(refused.id);
  });

  it('refuses intake beyond its limit with outbox_full', async () => {
    const { outbox } = await Outbox.open(directory, { maxReports: 2 });
    await outbox.add(report('a'));
    await outbox.add(report('b'));
    const refusal = await outbox.add(report('c')).catch((error: unknown) => error);
    expect(isClientError(refusal, 'outbox_full')).toBe(true);
    expect(outbox.size).toBe(2);
  });

  it('writes concurrent additions in the order they were made', async () => {
    const { outbox } = await Outbox.open(directory);
    const reports = Array.from({ length: 20 }, (_, index) => report(`burst ${index}`));
    await Promise.all(reports.map((each) => outbox.add(each)));
    const { outbox: reopened } = await Outbox.open(directory);
    expect(reopened.pending().map((each) => each.title)).toEqual(reports.map((r) => r.title));
  });
});
