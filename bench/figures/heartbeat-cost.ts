/**
 * Figure 5: CPU time per heartbeat, on the time-compressed daemon. The fleet
 * is held, first quiet (heartbeats paused for less than one interval, so no
 * agent turns inactive), then heartbeating on the announced interval. The
 * daemon's CPU rate while quiet is subtracted from its rate while
 * heartbeating; the rest, divided by the heartbeats acked, is the cost of
 * one: parse, actor event, liveness coalescing, ack, and its share of the
 * batched `agents` update.
 */

import { pause, progress } from '../context.ts';
import type { Fleet } from '../fleet.ts';
import type { RunningServer } from '../servers.ts';
import { round, type Summary, summarize } from '../stats.ts';

export interface HeartbeatFigure {
  readonly figure: 5;
  readonly agents: number;
  readonly intervalS: number;
  readonly heartbeatsPerS: number;
  readonly cpuMicrosPerHeartbeat: number;
  readonly quietCpuPercent: number;
  readonly busyCpuPercent: number;
  readonly ackLatencyMs: Summary;
  readonly loopDelayMs: { readonly p99: number; readonly max: number };
}

export async function heartbeatFigure(
  daemon: RunningServer,
  fleet: Fleet,
  settings: { intervalS: number; seconds: number },
): Promise<HeartbeatFigure> {
  const quietMs = settings.intervalS * 800;
  await fleet.all('heartbeats', { on: false });
  const quietStart = await daemon.probe();
  await pause(quietMs);
  const quietEnd = await daemon.probe();
  await fleet.all('heartbeats', { on: true });
  await fleet.take();
  await daemon.resetLoopDelay();
  const busyStart = await daemon.probe();
  await pause(settings.seconds * 1_000);
  const busyEnd = await daemon.probe();
  const samples = await fleet.take();

  const quietRate = (quietEnd.cpuMicros - quietStart.cpuMicros) / quietMs;
  const busyMs = settings.seconds * 1_000;
  const busyRate = (busyEnd.cpuMicros - busyStart.cpuMicros) / busyMs;
  const beats = samples.heartbeatMs.length;
  const perBeat = beats > 0 ? ((busyRate - quietRate) * busyMs) / beats : Number.NaN;
  progress(`  heartbeats: ${beats} in ${settings.seconds} s, ${round(perBeat, 1)} µs CPU each`);
  return {
    figure: 5,
    agents: busyEnd.sessions,
    intervalS: settings.intervalS,
    heartbeatsPerS: round(beats / settings.seconds, 0),
    cpuMicrosPerHeartbeat: round(perBeat, 1),
    quietCpuPercent: round(quietRate / 10, 1),
    busyCpuPercent: round(busyRate / 10, 1),
    ackLatencyMs: summarize(samples.heartbeatMs),
    loopDelayMs: { p99: round(busyEnd.loopDelayMs.p99, 1), max: round(busyEnd.loopDelayMs.max, 1) },
  };
}
