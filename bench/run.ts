/**
 * `npm run bench [-- --full] [--only=a,b] [--cpu-prof] [--storm-agents=N] [--no-markdown]
 *   [--keep-logs]`
 *
 * Runs the figures of issue 7 against a fresh benchmark database on the
 * local PostgreSQL server, each beside its limit in the same run, then
 * writes `bench/results/<profile>.json`, the SVG charts, and the profile's
 * block of `BENCHMARKS.md`. Figures: memory, ingest, feed, heartbeat, storm,
 * budgets, coldstart. Every load is bounded in count and time; a watchdog
 * ends the run (and every child process) if it overruns.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  type CredentialPools,
  daemonCa,
  progress,
  type RunContext,
  startBenchDaemon,
} from './context.ts';
import { createBenchDatabase } from './database.ts';
import { budgetFigure } from './figures/budgets.ts';
import { coldStartFigure } from './figures/cold-start.ts';
import { feedFigure } from './figures/feed-latency.ts';
import { heartbeatFigure } from './figures/heartbeat-cost.ts';
import { ingestFigure } from './figures/ingest.ts';
import { measureServerMemory, memoryFigure } from './figures/memory.ts';
import { stormFigure } from './figures/storm.ts';
import { Fleet } from './fleet.ts';
import { fullProfile, type Profile, quickProfile } from './profiles.ts';
import { benchHashCost, productionHashCost, provisionAgents } from './provision.ts';
import { describeMachine, type RunResults, resultsDir, writeReport } from './report.ts';
import { freePort } from './servers.ts';

const figureNames = ['memory', 'ingest', 'feed', 'heartbeat', 'storm', 'budgets', 'coldstart'];

const { values: flags } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    only: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'storm-agents': { type: 'string' },
    'no-markdown': { type: 'boolean', default: false },
    /** Keeps the work directory (the daemons' logs) instead of removing it. */
    'keep-logs': { type: 'boolean', default: false },
  },
});

const base = flags.full ? fullProfile : quickProfile;
const profile: Profile = flags['storm-agents']
  ? {
      ...base,
      storm: { ...base.storm, productionCostAgents: Number(flags['storm-agents']) },
    }
  : base;
const selected = new Set(flags.only ? flags.only.split(',') : figureNames);
for (const name of selected) {
  if (!figureNames.includes(name)) throw new Error(`unknown figure ${name}; one of ${figureNames}`);
}
const command = [
  'npm run bench',
  ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : []),
].join(' ');

const watchdogMs = (flags.full ? 90 : 6) * 60_000;
const watchdog = setTimeout(() => {
  progress(`watchdog: the run exceeded ${watchdogMs / 60_000} minutes; stopping everything`);
  results.failures.push({ figure: 'run', error: 'stopped by the watchdog; later figures missing' });
  results.finishedAt = new Date().toISOString();
  writeReport(results, !flags['no-markdown']);
  process.exit(3);
}, watchdogMs);
watchdog.unref();

const results: RunResults = {
  profile: profile.name,
  stem: flags.only ? `${profile.name}-${[...selected].join('+')}` : profile.name,
  command,
  startedAt: new Date().toISOString(),
  machine: describeMachine(postgresVersion(), openFilesLimit()),
  storms: [],
  failures: [],
};

async function attempt(figure: string, work: () => Promise<void>): Promise<void> {
  if (!selected.has(figure)) return;
  progress(`figure: ${figure}`);
  try {
    await work();
  } catch (error) {
    progress(`  ${figure} failed: ${(error as Error).message}`);
    results.failures.push({ figure, error: (error as Error).stack ?? String(error) });
  }
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'citadel-bench-'));
  const db = await createBenchDatabase();
  progress(`database ${db.name}, work dir ${workDir}`);
  try {
    const credentials = await provision(db.url);
    const profileDir = path.join(resultsDir, 'profiles');
    if (flags['cpu-prof']) mkdirSync(profileDir, { recursive: true });
    const context: RunContext = {
      profile,
      db,
      workDir,
      dataDir: path.join(workDir, 'data'),
      credentials,
      daemonExecArgv: flags['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
      command,
    };
    await realModePhase(context);
    await compressedPhase(context);
    await stormPhase(context);
    await attempt('budgets', async () => {
      results.budgets = await budgetFigure();
    });
    await attempt('coldstart', async () => {
      results.coldStart = await coldStartFigure(context);
    });
  } finally {
    await db.drop().catch((error: unknown) => progress(`drop failed: ${error}`));
    if (flags['keep-logs']) progress(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

/** Provisions what the selected figures need, through the benchmark path. */
async function provision(url: string): Promise<CredentialPools> {
  const fleetSize = Math.max(
    selected.has('memory') ? profile.memorySteps.at(-1)! : 0,
    selected.has('heartbeat') ? profile.heartbeat.agents : 0,
    selected.has('storm') ? profile.storm.agents : 0,
  );
  const began = performance.now();
  const pools: CredentialPools = {
    fleet: await provisionAgents(url, fleetSize, benchHashCost, 'fleet'),
    ingest: await provisionAgents(
      url,
      selected.has('ingest') ? profile.ingest.agents : 0,
      benchHashCost,
      'ingest',
    ),
    feed: await provisionAgents(
      url,
      selected.has('feed') ? profile.feed.agents : 0,
      benchHashCost,
      'feed',
    ),
    production: await provisionAgents(
      url,
      selected.has('storm') ? profile.storm.productionCostAgents : 0,
      productionHashCost,
      'prod',
    ),
  };
  progress(`provisioned in ${((performance.now() - began) / 1_000).toFixed(1)} s`);
  return pools;
}

/**
 * Figures 1–3 on a daemon in the real heartbeat mode (60 s). The threat
 * budget (100 an hour per agent) is switched off with its `off` sentinel:
 * figures 2 and 3 measure the storage path, and at 20,000 threats/s the
 * budget would otherwise need 720,000 provisioned agents to stay out of the
 * way. Every other budget stays on.
 */
async function realModePhase(context: RunContext): Promise<void> {
  if (!['memory', 'ingest', 'feed'].some((name) => selected.has(name))) return;
  const daemon = await startBenchDaemon(context, {
    heartbeatIntervalS: 60,
    label: 'real',
    env: { CITADEL_THREAT_BUDGET_PER_HOUR: 'off' },
  });
  let daemonMemory: Awaited<ReturnType<typeof measureServerMemory>> | undefined;
  try {
    await attempt('memory', async () => {
      daemonMemory = await measureServerMemory(
        context,
        daemon,
        'citadel',
        context.credentials.fleet,
      );
    });
    await attempt('ingest', async () => {
      results.ingest = await ingestFigure(context, daemon);
    });
    await attempt('feed', async () => {
      results.feed = await feedFigure(context, daemon);
    });
  } finally {
    await daemon.stop();
  }
  const measured = daemonMemory;
  if (measured) {
    await attempt('memory', async () => {
      results.memory = await memoryFigure(context, measured);
    });
  }
}

/** Figure 5 on a time-compressed daemon. */
async function compressedPhase(context: RunContext): Promise<void> {
  if (!selected.has('heartbeat')) return;
  const intervalS = profile.compressedIntervalS;
  const port = await freePort();
  const daemon = await startBenchDaemon(context, {
    heartbeatIntervalS: intervalS,
    port,
    label: 'compressed',
  });
  const agents = context.credentials.fleet.slice(0, profile.heartbeat.agents);
  const fleet = await Fleet.start({ port, ca: daemonCa(context), protocol: 'citadel', agents });
  try {
    const connected = await fleet.connect();
    progress(`  ${connected.connected} agents online (${connected.failed} failed)`);
    await attempt('heartbeat', async () => {
      results.heartbeat = await heartbeatFigure(daemon, fleet, {
        intervalS,
        seconds: profile.heartbeat.seconds,
      });
    });
  } finally {
    await fleet.close();
    await daemon.stop();
  }
}

/**
 * Figure 4 on a daemon in the real heartbeat mode (60 s), which the storms
 * restart on the same port. Real time, because a storm of 10,000 agents in
 * production is 10,000 agents heartbeating once a minute: in the compressed
 * mode they would heartbeat 2,000 times a second, twelve times the load, on
 * the two cores that the returning handshakes need.
 */
async function stormPhase(context: RunContext): Promise<void> {
  if (!selected.has('storm')) return;
  const port = await freePort();
  let generation = 0;
  const start = () =>
    startBenchDaemon(context, { heartbeatIntervalS: 60, port, label: `storm-${generation++}` });
  let daemon = await start();
  const ca = daemonCa(context);
  const agents = context.credentials.fleet.slice(0, profile.storm.agents);
  let fleet = await Fleet.start({ port, ca, protocol: 'citadel', agents });
  try {
    const connected = await fleet.connect();
    progress(`  ${connected.connected} agents online (${connected.failed} failed)`);
    await attempt('storm', async () => {
      const bench = await stormFigure(fleet, daemon, start, {
        hashCost: benchHashCost,
        timeoutS: profile.storm.timeoutS,
      });
      daemon = bench.daemon;
      results.storms.push(bench.figure);
      await fleet.close();
      fleet = await Fleet.start({
        port,
        ca,
        protocol: 'citadel',
        agents: context.credentials.production,
      });
      const began = performance.now();
      const online = await fleet.connect(undefined, 16);
      progress(
        `  ${online.connected} cost-10 agents online in ` +
          `${((performance.now() - began) / 1e3).toFixed(1)} s`,
      );
      const production = await stormFigure(fleet, daemon, start, {
        hashCost: productionHashCost,
        timeoutS: profile.storm.timeoutS,
      });
      daemon = production.daemon;
      results.storms.push(production.figure);
    });
  } finally {
    await fleet.close();
    await daemon.stop();
  }
}

function postgresVersion(): string {
  try {
    const out = execFileSync('psql', ['--version'], { encoding: 'utf8' });
    return out.trim().replace(/^psql \(PostgreSQL\) /, 'PostgreSQL ');
  } catch {
    return 'PostgreSQL (version unknown)';
  }
}

function openFilesLimit(): string {
  try {
    return execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

await main().catch((error: unknown) => {
  results.failures.push({ figure: 'run', error: (error as Error).stack ?? String(error) });
  progress(`run failed: ${(error as Error).message}`);
});
results.finishedAt = new Date().toISOString();
const written = writeReport(results, !flags['no-markdown']);
progress(`wrote ${written.map((file) => path.relative(process.cwd(), file)).join(', ')}`);
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
process.exit(results.failures.length > 0 ? 1 : 0);
