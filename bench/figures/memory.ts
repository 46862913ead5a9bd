/**
 * Figure 1: memory per held agent. The same fleet (real TLS sessions) is
 * connected step by step to the daemon and then to a bare `ws` TLS server;
 * at each step both are read after a full collection. Per-connection cost is
 * (reading at N − reading with none) / N; the goal is the daemon within
 * 1.5× of the bare server's RSS per connection.
 */
import path from 'node:path';
import type { AgentCredential } from '../bench-agent.ts';
import { daemonCa, pause, progress, type RunContext } from '../context.ts';
import { Fleet } from '../fleet.ts';
import { type RunningServer, type ServerReading, startBareServer } from '../servers.ts';
import { round } from '../stats.ts';

/** One reading of a server at one fleet size. */
export interface MemoryPoint {
  readonly agents: number;
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
  readonly externalMiB: number;
  readonly openFiles: number;
}

export interface ServerMemory {
  readonly points: readonly MemoryPoint[];
  readonly rssPerAgentKiB: number;
  readonly heapPerAgentKiB: number;
  readonly connectSeconds: number;
}

export interface MemoryFigure {
  readonly figure: 1;
  readonly daemon: ServerMemory;
  readonly bare: ServerMemory;
  readonly rssRatio: number;
  readonly heapRatio: number;
  readonly goal: string;
  readonly met: boolean;
}

const mib = (bytes: number) => round(bytes / 1_048_576, 1);

/** Steps the fleet up on `server`, reading memory at each size. */
export async function measureServerMemory(
  context: RunContext,
  server: RunningServer,
  protocol: 'citadel' | 'bare',
  agents: readonly AgentCredential[],
): Promise<ServerMemory> {
  const fleet = await Fleet.start({ port: server.port, ca: daemonCa(context), protocol, agents });
  try {
    await pause(1_000);
    const base = await server.probe(true);
    const points: MemoryPoint[] = [toPoint(0, base)];
    let connectMs = 0;
    let held = 0;
    for (const step of context.profile.memorySteps) {
      const began = performance.now();
      const result = await fleet.connect(step - held);
      connectMs += performance.now() - began;
      held += result.connected;
      await pause(2_000);
      const reading = await server.probe(true);
      points.push(toPoint(reading.sessions, reading));
      progress(`  ${protocol}: ${reading.sessions} held, rss ${mib(reading.rssBytes)} MiB`);
    }
    const last = points[points.length - 1]!;
    const perAgent = (now: number, then: number) =>
      last.agents > 0 ? round(((now - then) * 1_024) / last.agents, 2) : Number.NaN;
    return {
      points,
      rssPerAgentKiB: perAgent(last.rssMiB, points[0]!.rssMiB),
      heapPerAgentKiB: perAgent(last.heapUsedMiB, points[0]!.heapUsedMiB),
      connectSeconds: round(connectMs / 1_000, 1),
    };
  } finally {
    await fleet.close();
  }
}

function toPoint(agents: number, reading: ServerReading): MemoryPoint {
  return {
    agents,
    rssMiB: mib(reading.rssBytes),
    heapUsedMiB: mib(reading.heapUsedBytes),
    externalMiB: mib(reading.externalBytes),
    openFiles: reading.openFiles,
  };
}

/** The bare server's side of figure 1, then the comparison. */
export async function memoryFigure(
  context: RunContext,
  daemon: ServerMemory,
): Promise<MemoryFigure> {
  const bareServer = await startBareServer(context.dataDir, path.join(context.workDir, 'bare.log'));
  let bare: ServerMemory;
  try {
    bare = await measureServerMemory(context, bareServer, 'bare', context.credentials.fleet);
  } finally {
    await bareServer.stop();
  }
  const rssRatio = round(daemon.rssPerAgentKiB / bare.rssPerAgentKiB, 2);
  return {
    figure: 1,
    daemon,
    bare,
    rssRatio,
    heapRatio: round(daemon.heapPerAgentKiB / bare.heapPerAgentKiB, 2),
    goal: 'daemon RSS per agent ≤ 1.5× the bare ws TLS server',
    met: rssRatio <= 1.5,
  };
}
