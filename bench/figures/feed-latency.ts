/**
 * Figure 3: threat-to-feed latency. One load generator holds the sending
 * agents and an admin feed socket, so that the send time and the receive
 * time are read on one clock. Threats go out open-loop at each offered rate;
 * the headline is the 1,000/s point (goal: p99 under 50 ms).
 */
import { randomUUID } from 'node:crypto';
import { adminToken, daemonCa, progress, type RunContext } from '../context.ts';
import { Fleet } from '../fleet.ts';
import type { RunningServer } from '../servers.ts';
import { round, type Summary, summarize } from '../stats.ts';

export interface FeedPoint {
  readonly offeredPerS: number;
  readonly sentPerS: number;
  readonly feedMs: Summary;
  readonly ackMs: Summary;
}

export interface FeedFigure {
  readonly figure: 3;
  readonly points: readonly FeedPoint[];
  readonly atThousand: FeedPoint | undefined;
  readonly goal: string;
  readonly met: boolean;
}

export async function feedFigure(context: RunContext, daemon: RunningServer): Promise<FeedFigure> {
  const settings = context.profile.feed;
  const fleet = await Fleet.start({
    port: daemon.port,
    ca: daemonCa(context),
    protocol: 'citadel',
    agents: context.credentials.feed,
  });
  const generator = fleet.generators[0]!;
  try {
    await fleet.connect();
    const tag = randomUUID();
    await generator.call('feed', {
      url: `wss://127.0.0.1:${daemon.port}/api/v1/feed`,
      ca: daemonCa(context),
      token: adminToken(context),
      tag,
    });
    const points: FeedPoint[] = [];
    for (const offered of settings.rates) {
      await fleet.take();
      const sent = await generator.call<{ sent: number; seconds: number }>('rate', {
        perSecond: offered,
        durationMs: settings.seconds * 1_000,
        tag,
      });
      const samples = await fleet.take();
      const point = {
        offeredPerS: offered,
        sentPerS: round(sent.sent / settings.seconds, 0),
        feedMs: summarize(samples.feedMs),
        ackMs: summarize(samples.ackMs),
      };
      progress(`  feed at ${offered}/s: p50 ${point.feedMs.p50} p99 ${point.feedMs.p99} ms`);
      points.push(point);
    }
    const atThousand = points.find((p) => p.offeredPerS === 1_000);
    return {
      figure: 3,
      points,
      atThousand,
      goal: 'p99 < 50 ms at 1,000 threats/s',
      met: atThousand !== undefined && atThousand.feedMs.p99 < 50,
    };
  } finally {
    await fleet.close();
  }
}
