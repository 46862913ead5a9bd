/**
 * The run's outputs: the results as JSON (`bench/results/<profile>.json`),
 * the charts as SVG, and the figures as a Markdown block that replaces the
 * profile's block in `BENCHMARKS.md` (between `<!-- bench:<profile>:start -->`
 * and `<!-- bench:<profile>:end -->`), so the document always shows what the
 * last run measured.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BudgetFigure } from './figures/budgets.ts';
import type { ColdStartFigure } from './figures/cold-start.ts';
import type { FeedFigure } from './figures/feed-latency.ts';
import type { HeartbeatFigure } from './figures/heartbeat-cost.ts';
import type { IngestFigure } from './figures/ingest.ts';
import type { MemoryFigure } from './figures/memory.ts';
import type { StormFigure } from './figures/storm.ts';
import { lineChart } from './svg-chart.ts';

export const resultsDir = path.resolve(import.meta.dirname, 'results');
const benchmarksFile = path.resolve(import.meta.dirname, '../BENCHMARKS.md');

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly postgres: string;
  readonly openFilesLimit: string;
}

export interface RunResults {
  readonly profile: string;
  /** File name stem of the outputs: the profile, plus the figures when `--only` chose some. */
  readonly stem: string;
  readonly command: string;
  readonly startedAt: string;
  finishedAt?: string;
  readonly machine: Machine;
  memory?: MemoryFigure;
  ingest?: IngestFigure;
  feed?: FeedFigure;
  heartbeat?: HeartbeatFigure;
  storms: StormFigure[];
  budgets?: BudgetFigure;
  coldStart?: ColdStartFigure;
  failures: Array<{ figure: string; error: string }>;
}

export function describeMachine(postgres: string, openFilesLimit: string): Machine {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres,
    openFilesLimit,
  };
}

/** Writes JSON, charts and the Markdown block; returns the files written. */
export function writeReport(results: RunResults, updateMarkdown: boolean): string[] {
  mkdirSync(resultsDir, { recursive: true });
  const written: string[] = [];
  const write = (name: string, text: string) => {
    const file = path.join(resultsDir, name);
    writeFileSync(file, text);
    written.push(file);
  };
  write(`${results.stem}.json`, `${JSON.stringify(results, null, 2)}\n`);
  if (results.memory) write(`${results.stem}-memory.svg`, memoryChart(results.memory));
  if (results.feed) write(`${results.stem}-latency.svg`, latencyChart(results.feed));
  if (updateMarkdown && results.stem === results.profile && existsSync(benchmarksFile)) {
    const block = markdownBlock(results);
    const text = readFileSync(benchmarksFile, 'utf8');
    const start = `<!-- bench:${results.profile}:start -->`;
    const end = `<!-- bench:${results.profile}:end -->`;
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    if (from >= 0 && to > from) {
      const updated = `${text.slice(0, from + start.length)}\n${block}\n${text.slice(to)}`;
      writeFileSync(benchmarksFile, updated);
      written.push(benchmarksFile);
    }
  }
  return written;
}

function memoryChart(figure: MemoryFigure): string {
  return lineChart({
    title: 'Memory against agents held (RSS after GC)',
    xLabel: 'agents (TLS WebSocket sessions)',
    yLabel: 'MiB',
    series: [
      { label: 'daemon RSS', points: figure.daemon.points.map((p) => [p.agents, p.rssMiB]) },
      {
        label: 'daemon heap used',
        points: figure.daemon.points.map((p) => [p.agents, p.heapUsedMiB]),
      },
      {
        label: 'bare ws TLS server RSS (limit)',
        points: figure.bare.points.map((p) => [p.agents, p.rssMiB]),
        dashed: true,
      },
      {
        label: 'bare server heap used',
        points: figure.bare.points.map((p) => [p.agents, p.heapUsedMiB]),
        dashed: true,
      },
    ],
  });
}

function latencyChart(figure: FeedFigure): string {
  const at = (pick: (p: FeedFigure['points'][number]) => number) =>
    figure.points.map((p) => [p.offeredPerS, pick(p)] as const);
  return lineChart({
    title: 'Latency against offered threat load',
    xLabel: 'threats per second offered',
    yLabel: 'ms',
    series: [
      { label: 'send → feed p50', points: at((p) => p.feedMs.p50) },
      { label: 'send → feed p99', points: at((p) => p.feedMs.p99) },
      { label: 'send → ack p99', points: at((p) => p.ackMs.p99) },
      { label: 'goal: feed p99 50 ms', points: at(() => 50), dashed: true },
    ],
  });
}

const yes = (met: boolean | undefined) => (met === undefined ? '—' : met ? 'met' : '**not met**');

/** The figures as Markdown tables. */
export function markdownBlock(r: RunResults): string {
  const lines = [
    `Run \`${r.command}\`, ${r.startedAt} → ${r.finishedAt ?? '?'}; ` +
      `${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, ` +
      `${r.machine.kernel}, Node ${r.machine.node}, ${r.machine.postgres}.`,
    '',
    '| # | figure | measured | limit / goal | ratio | goal |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  const row = (cells: Array<string | number>) => lines.push(`| ${cells.join(' | ')} |`);
  if (r.memory) {
    const m = r.memory;
    const n = m.daemon.points.at(-1)?.agents ?? 0;
    row([
      1,
      `RSS per agent at ${n} agents`,
      `${m.daemon.rssPerAgentKiB} KiB`,
      `bare ws TLS: ${m.bare.rssPerAgentKiB} KiB; goal ≤ 1.5×`,
      `${m.rssRatio}×`,
      yes(m.met),
    ]);
    row([
      1,
      'heap per agent',
      `${m.daemon.heapPerAgentKiB} KiB`,
      `bare: ${m.bare.heapPerAgentKiB} KiB`,
      `${m.heapRatio}×`,
      '—',
    ]);
  }
  if (r.ingest) {
    const i = r.ingest;
    row([
      2,
      'threats/s acked after commit',
      i.threatsPerS,
      `raw unnest insert: ${i.rawInsertRowsPerS} rows/s; goal ≥ 20,000/s`,
      i.ratio,
      yes(i.met),
    ]);
    row([
      2,
      'ack latency p50 / p99',
      `${i.ackLatencyMs.p50} / ${i.ackLatencyMs.p99} ms`,
      `daemon CPU ${i.daemonCpuPercent} %`,
      '—',
      '—',
    ]);
  }
  if (r.feed) {
    const p = r.feed.atThousand;
    row([
      3,
      'send → feed at 1,000/s p50 / p99 / max',
      p ? `${p.feedMs.p50} / ${p.feedMs.p99} / ${p.feedMs.max} ms` : 'n/a',
      'p99 < 50 ms',
      p ? `${Math.round((p.feedMs.p99 / 50) * 100) / 100}× of goal` : '—',
      yes(r.feed.met),
    ]);
  }
  for (const s of r.storms) {
    row([
      4,
      `storm, ${s.agents} agents, bcrypt cost ${s.hashCost}: all back`,
      s.allBackSeconds === null
        ? `not all: ${s.backWithinBound} in ${s.boundSeconds} s`
        : `${s.allBackSeconds} s`,
      '≤ 30 s',
      s.allBackSeconds === null ? '—' : `${Math.round((s.allBackSeconds / 30) * 100) / 100}×`,
      yes(s.met),
    ]);
    row([
      4,
      '… heartbeat ack p99 / loop delay p99, max of agents back',
      `${s.heartbeatAckMs.p99} ms / ${s.loopDelayMs.p99}, ${s.loopDelayMs.max} ms`,
      'ack p99 < 100 ms',
      '—',
      '—',
    ]);
  }
  if (r.heartbeat) {
    const h = r.heartbeat;
    row([
      5,
      `CPU per heartbeat (${h.agents} agents every ${h.intervalS} s)`,
      `${h.cpuMicrosPerHeartbeat} µs`,
      `ack p99 ${h.ackLatencyMs.p99} ms at ${h.heartbeatsPerS}/s`,
      '—',
      '—',
    ]);
  }
  if (r.budgets) {
    const b = r.budgets;
    row([
      6,
      `budget check / memory for ${b.agents} agents`,
      b.status === 'measured'
        ? `${b.heartbeatCheckNs} ns (heartbeat), ${b.refusedThreatCheckNs} ns (refused threat) / ` +
          `${b.heartbeatOnlyMiB} MiB heartbeats only, ${b.steadyMiB} MiB with 3 reports ` +
          `and a refresh an hour each, ${b.fullMiB} MiB every window full`
        : b.status,
      '< 1 µs / < 10 MB',
      '—',
      yes(b.met),
    ]);
  }
  if (r.coldStart) {
    const c = r.coldStart;
    row([
      7,
      'embedded cold start: first / later',
      `${c.firstStartS} s / ${c.laterStartsS.join(', ')} s`,
      '—',
      '—',
      '—',
    ]);
  }
  for (const f of r.failures)
    row(['!', `${f.figure} failed`, f.error.split('\n')[0] ?? '', '', '', '']);
  return lines.join('\n');
}
