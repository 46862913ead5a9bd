/**
 * Figure 7: cold start with the embedded database (no `DATABASE_URL`). The
 * first start on an empty data directory runs initdb, the migrations, the
 * development certificate and the bootstrap credentials; later starts find
 * all of that in place. Each is timed from the fork of the daemon process to
 * its ready answer, and stopped gracefully before the next.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { progress, type RunContext } from '../context.ts';
import { startDaemon } from '../servers.ts';
import { round } from '../stats.ts';

export interface ColdStartFigure {
  readonly figure: 7;
  readonly firstStartS: number;
  readonly laterStartsS: readonly number[];
  readonly stopS: readonly number[];
}

export async function coldStartFigure(context: RunContext): Promise<ColdStartFigure> {
  // Not under the run's 0700 work directory: the embedded server runs as an
  // unprivileged user when the harness is root, and must reach its data dir.
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'citadel-bench-embedded-'));
  const starts: number[] = [];
  const stops: number[] = [];
  try {
    for (let run = 0; run <= context.profile.laterStarts; run += 1) {
      const daemon = await startDaemon({
        dataDir,
        heartbeatIntervalS: 60,
        logFile: path.join(context.workDir, `embedded-${run}.log`),
      });
      starts.push(round(daemon.readyMs / 1_000, 2));
      const began = performance.now();
      await daemon.stop();
      stops.push(round((performance.now() - began) / 1_000, 2));
      progress(`  embedded start ${run}: ${starts[run]} s, stop ${stops[run]} s`);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { figure: 7, firstStartS: starts[0]!, laterStartsS: starts.slice(1), stopS: stops };
}
