/**
 * Figure 2: durable threat ingest. A closed loop of agents, each keeping
 * `window` reports in flight, counts the reports acked (acks come only after
 * commit) over the window. The limit: one process inserting the same shape of
 * rows into the same `threats` table with a multi-row `unnest` insert, one
 * autocommitted statement per batch, back to back.
 */
import { randomUUID } from 'node:crypto';
import { daemonCa, progress, type RunContext } from '../context.ts';
import { withClient } from '../database.ts';
import { Fleet } from '../fleet.ts';
import type { RunningServer } from '../servers.ts';
import { round, type Summary, summarize } from '../stats.ts';

export interface IngestFigure {
  readonly figure: 2;
  readonly threatsPerS: number;
  readonly ackLatencyMs: Summary;
  readonly errors: Record<string, number>;
  readonly daemonCpuPercent: number;
  readonly rawInsertRowsPerS: number;
  readonly ratio: number;
  readonly goal: string;
  readonly met: boolean;
}

export async function ingestFigure(
  context: RunContext,
  daemon: RunningServer,
): Promise<IngestFigure> {
  const settings = context.profile.ingest;
  const fleet = await Fleet.start({
    port: daemon.port,
    ca: daemonCa(context),
    protocol: 'citadel',
    agents: context.credentials.ingest,
    minProcesses: 2,
  });
  try {
    await fleet.connect();
    await fleet.take();
    const before = await daemon.probe();
    const answers = await fleet.all<{ acksInWindow: number }>('ingest', {
      window: settings.window,
      durationMs: settings.seconds * 1_000,
    });
    const after = await daemon.probe();
    const samples = await fleet.take();
    const acked = answers.reduce((sum, a) => sum + a.acksInWindow, 0);
    const threatsPerS = round(acked / settings.seconds, 0);
    progress(`  ingest: ${threatsPerS} threats/s acked after commit`);
    const raw = await rawInsert(
      context,
      context.credentials.ingest.map((c) => c.agentId),
    );
    progress(`  raw unnest insert: ${raw} rows/s`);
    return {
      figure: 2,
      threatsPerS,
      ackLatencyMs: summarize(samples.ackMs),
      errors: samples.errors,
      daemonCpuPercent: round(
        ((after.cpuMicros - before.cpuMicros) / (settings.seconds * 1e6)) * 100,
        0,
      ),
      rawInsertRowsPerS: raw,
      ratio: round(threatsPerS / raw, 3),
      goal: '≥ 20,000 threats/s acked after commit',
      met: threatsPerS >= 20_000,
    };
  } finally {
    await fleet.close();
  }
}

/** Rows per second of back-to-back multi-row `unnest` inserts from this process. */
async function rawInsert(context: RunContext, agentIds: readonly string[]): Promise<number> {
  const { batch, seconds } = context.profile.rawInsert;
  return withClient(context.db.url, async (client) => {
    const began = performance.now();
    let rows = 0;
    while (performance.now() - began < seconds * 1_000) {
      const columns = rawBatch(batch, agentIds);
      await client.query(
        `INSERT INTO threats
           (agent_id, report_id, threat_type, severity, hostname, title, detected_at, details)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int2[], $5::text[],
           $6::text[], $7::timestamptz[], $8::jsonb[])`,
        columns,
      );
      rows += batch;
    }
    return round(rows / ((performance.now() - began) / 1_000), 0);
  });
}

function rawBatch(size: number, agentIds: readonly string[]): unknown[][] {
  const columns: unknown[][] = [[], [], [], [], [], [], [], []];
  const now = new Date().toISOString();
  for (let i = 0; i < size; i += 1) {
    const values = [
      agentIds[i % agentIds.length],
      randomUUID(),
      'bench.raw',
      1 + (i % 10),
      `bench-raw-${i % agentIds.length}`,
      'benchmark threat',
      now,
      JSON.stringify({ phase: 'raw' }),
    ];
    for (const [column, value] of values.entries()) columns[column]!.push(value);
  }
  return columns;
}
