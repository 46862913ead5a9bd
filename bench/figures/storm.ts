/**
 * Figure 4: reconnect storm. A daemon holding the fleet restarts (the
 * graceful stop: every socket closed with 1012 and a reconnect hint spread
 * over 10 s; then a new process on the same port). The agents come back the
 * way the reference agent does: after the hint, then capped exponential
 * backoff with full jitter. Measured: time from the stop until the last
 * agent is welcomed again, the new daemon's event-loop delay meanwhile, and
 * the heartbeat ack latency of agents already back. Goals: all back within
 * 30 s; ack p99 under 100 ms.
 */
import { pause, progress } from '../context.ts';
import type { Fleet } from '../fleet.ts';
import type { RunningServer } from '../servers.ts';
import { round, type Summary, summarize } from '../stats.ts';

export interface StormFigure {
  readonly figure: 4;
  readonly agents: number;
  readonly hashCost: number;
  readonly stopSeconds: number;
  readonly restartReadySeconds: number;
  /** From the stop to the last welcome; null when not all came back in time. */
  readonly allBackSeconds: number | null;
  readonly backWithinBound: number;
  readonly boundSeconds: number;
  readonly loopDelayMs: { readonly p99: number; readonly max: number };
  readonly heartbeatAckMs: Summary;
  readonly refusals: Record<string, number>;
  readonly goal: string;
  readonly met: boolean;
}

export async function stormFigure(
  fleet: Fleet,
  daemon: RunningServer,
  restart: () => Promise<RunningServer>,
  settings: { hashCost: number; timeoutS: number },
): Promise<{ figure: StormFigure; daemon: RunningServer }> {
  const agents = await fleet.online();
  await fleet.all('reconnect', { on: true });
  await fleet.take();
  const began = Date.now();
  await daemon.stop();
  const stopped = Date.now();
  const next = await restart();
  const ready = Date.now();
  let online = 0;
  while (Date.now() - began < settings.timeoutS * 1_000) {
    online = await fleet.online();
    if (online >= agents) break;
    await pause(250);
  }
  const reading = await next.probe();
  const samples = await fleet.take();
  await fleet.all('reconnect', { on: false });
  const lastWelcome = samples.welcomesAt.reduce((a, b) => Math.max(a, b), 0);
  const allBack = online >= agents ? round((lastWelcome - began) / 1_000, 1) : null;
  const heartbeatAckMs = summarize(samples.heartbeatMs);
  progress(`  storm (cost ${settings.hashCost}, ${agents}): ${online} back, all in ${allBack} s`);
  return {
    daemon: next,
    figure: {
      figure: 4,
      agents,
      hashCost: settings.hashCost,
      stopSeconds: round((stopped - began) / 1_000, 1),
      restartReadySeconds: round((ready - began) / 1_000, 1),
      allBackSeconds: allBack,
      backWithinBound: online,
      boundSeconds: settings.timeoutS,
      loopDelayMs: {
        p99: round(reading.loopDelayMs.p99, 1),
        max: round(reading.loopDelayMs.max, 1),
      },
      heartbeatAckMs,
      refusals: samples.refusals,
      goal: 'all back ≤ 30 s; heartbeat ack p99 < 100 ms for agents back',
      met: allBack !== null && allBack <= 30 && heartbeatAckMs.p99 < 100,
    },
  };
}
