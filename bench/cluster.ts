/**
 * Issue 8's figure: 100,000 agents held by several daemons on one
 * PostgreSQL, on this machine. Each daemon holds a sixth of the fleet (the
 * 20,000-file limit per process), the agents connect straight to their
 * daemon's port from their own load generators, and the figure reads how
 * long the fleet took to come online, the sessions and memory of each
 * daemon, and how many agents the database shows `active` once every agent
 * has sent a heartbeat.
 *
 *   npm run bench:cluster            (100,000 agents over 6 daemons)
 *   npm run bench:cluster -- --agents=30000 --daemons=2
 *
 * Agents are provisioned straight into the benchmark database (see
 * `provision.ts`), hashed at the benchmark cost. Results go to
 * `bench/results/cluster.json`; the figure is copied into BENCHMARKS.md by
 * hand, with this command.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createBenchDatabase } from './database.ts';
import { Fleet } from './fleet.ts';
import { benchHashCost, provisionAgents } from './provision.ts';
import { type RunningServer, startDaemon } from './servers.ts';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '100000' },
    daemons: { type: 'string', default: '6' },
  },
});
const agentCount = Number(values.agents);
const daemonCount = Number(values.daemons);
const heartbeatIntervalS = 60;

function log(message: string): void {
  process.stderr.write(`[cluster ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

const mib = (bytes: number) => Math.round((bytes / 1_048_576) * 10) / 10;

const workDir = path.join(os.tmpdir(), `citadel-bench-cluster-${process.pid}`);
mkdirSync(workDir, { recursive: true });
const db = await createBenchDatabase();
const daemons: RunningServer[] = [];
const fleets: Fleet[] = [];
const watchdog = setTimeout(() => {
  log('watchdog: 55 minutes passed, stopping');
  process.exit(2);
}, 55 * 60_000);
watchdog.unref();

try {
  log(`provisioning ${agentCount} agents`);
  const started = performance.now();
  const credentials = await provisionAgents(db.url, agentCount, benchHashCost, 'cluster');
  log(`provisioned in ${Math.round((performance.now() - started) / 1_000)} s`);

  for (let i = 0; i < daemonCount; i += 1) {
    daemons.push(
      await startDaemon({
        dataDir: path.join(workDir, `data-${i}`),
        logFile: path.join(workDir, `daemon-${i}.log`),
        databaseUrl: db.url,
        heartbeatIntervalS,
        env: { DB_POOL_MAX: '6', CITADEL_AUTH_FAILURES_PER_10_MIN: 'off' },
      }),
    );
  }
  log(`${daemonCount} daemons ready`);

  const connectStarted = performance.now();
  const results = await Promise.all(
    daemons.map(async (daemon, i) => {
      const share = credentials.filter((_, n) => n % daemonCount === i);
      const ca = readFileSync(path.join(workDir, `data-${i}`, 'tls', 'cert.pem'), 'utf8');
      const fleet = await Fleet.start({
        port: daemon.port,
        ca,
        protocol: 'citadel',
        agents: share,
      });
      fleets.push(fleet);
      // A sixth of 100,000 handshakes on two shared cores takes far over
      // the 10 minutes a call gets by default.
      const answers = await fleet.all<{ connected: number }>(
        'connect',
        { concurrency: 32 },
        45 * 60_000,
      );
      return { connected: answers.reduce((n, a) => n + a.connected, 0) };
    }),
  );
  const connectSeconds = (performance.now() - connectStarted) / 1_000;
  const connected = results.reduce((n, r) => n + r.connected, 0);
  log(`${connected} connected in ${Math.round(connectSeconds)} s`);

  // Every agent heartbeats within one interval (random phase) after its welcome.
  await new Promise((resolve) => setTimeout(resolve, (heartbeatIntervalS + 10) * 1_000));
  const readings = await Promise.all(daemons.map((d) => d.probe(true)));
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const active = await client.query(
    "SELECT count(*)::int AS n FROM agents WHERE status = 'active' AND last_heartbeat IS NOT NULL",
  );
  await client.end();
  const online = (await Promise.all(fleets.map((f) => f.online()))).reduce((a, b) => a + b, 0);

  const result = {
    date: new Date().toISOString(),
    command: `npm run bench:cluster -- --agents=${agentCount} --daemons=${daemonCount}`,
    agents: agentCount,
    daemons: daemonCount,
    connected,
    connectSeconds: Math.round(connectSeconds * 10) / 10,
    onlineAfterOneInterval: online,
    activeInDatabase: active.rows[0].n as number,
    perDaemon: readings.map((r) => ({
      sessions: r.sessions,
      rssMiB: mib(r.rssBytes),
      heapUsedMiB: mib(r.heapUsedBytes),
      loopDelayP99Ms: r.loopDelayMs.p99,
      openFiles: r.openFiles,
    })),
    totalDaemonRssMiB: mib(readings.reduce((n, r) => n + r.rssBytes, 0)),
  };
  mkdirSync(path.join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(
    path.join(import.meta.dirname, 'results', 'cluster.json'),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  console.log(JSON.stringify(result, null, 2));
} finally {
  await Promise.all(fleets.map((f) => f.close().catch(() => undefined)));
  await Promise.all(daemons.map((d) => d.stop().catch(() => undefined)));
  await db.drop().catch(() => undefined);
  clearTimeout(watchdog);
}
