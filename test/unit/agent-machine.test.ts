/** The agent actor on simulated time: liveness, token expiry, and no timer left behind. */
import { describe, expect, it } from 'vitest';
import { AgentBudgets } from '../../src/budgets/agent-budgets.ts';
import { ManualClock } from '../../src/clock/clock.ts';
import type { AgentStatus } from '../../src/database/rows.ts';
import { startAgentActor } from '../../src/sessions/agent-machine.ts';

const interval = 60_000;

function harness(tokenLifetimeMs = 24 * 3_600_000) {
  const clock = new ManualClock();
  const statuses: AgentStatus[] = [];
  const events: string[] = [];
  const actor = startAgentActor(
    {
      heartbeatIntervalMs: interval,
      tokenExpiresAtMs: clock.now() + tokenLifetimeMs,
      refreshWindowMs: 3_600_000,
      now: () => clock.now(),
      budgets: new AgentBudgets(
        {
          enrollmentPerIp: undefined,
          threatsPerAgent: undefined,
          refreshesPerAgent: undefined,
          authFailuresPerIp: undefined,
        },
        interval,
      ),
      effects: {
        statusChanged: (status) => statuses.push(status),
        tokenExpiring: () => events.push('expiring'),
        tokenExpired: () => events.push('expired'),
        livenessLost: () => events.push('lost'),
      },
    },
    clock,
  );
  return { clock, statuses, events, actor };
}

describe('the agent actor', () => {
  it('starts active and stays active while heartbeats arrive every interval', () => {
    const { clock, statuses, actor } = harness();
    for (let i = 0; i < 100; i += 1) {
      clock.advance(interval + 5_000);
      actor.send({ type: 'HEARTBEAT' });
    }
    expect(statuses.filter((s) => s !== 'active')).toEqual([]);
    actor.stop();
  });

  it('turns inactive after two missed intervals and offline after three', () => {
    const { clock, statuses, events, actor } = harness();
    clock.advance(2 * interval - 1);
    expect(statuses).toEqual(['active']);
    clock.advance(1);
    expect(statuses).toEqual(['active', 'inactive']);
    clock.advance(interval);
    expect(statuses).toEqual(['active', 'inactive', 'offline']);
    expect(events).toContain('lost');
    actor.stop();
  });

  it('comes back to active when a heartbeat arrives while inactive', () => {
    const { clock, statuses, actor } = harness();
    clock.advance(2 * interval + 10);
    actor.send({ type: 'HEARTBEAT' });
    expect(statuses).toEqual(['active', 'inactive', 'active']);
    clock.advance(2 * interval - 20);
    expect(statuses.at(-1)).toBe('active');
    actor.stop();
  });

  it('reports offline when the socket closes', () => {
    const { statuses, actor } = harness();
    actor.send({ type: 'SOCKET_CLOSED' });
    expect(statuses.at(-1)).toBe('offline');
    actor.stop();
  });

  it('warns when the token enters its refresh window and expires it on time', () => {
    const { clock, events, actor } = harness(2 * 3_600_000);
    for (let i = 0; i < 59; i += 1) {
      clock.advance(interval);
      actor.send({ type: 'HEARTBEAT' });
    }
    expect(events).not.toContain('expiring');
    clock.advance(interval);
    expect(events).toContain('expiring');
    for (let i = 0; i < 59; i += 1) {
      clock.advance(interval);
      actor.send({ type: 'HEARTBEAT' });
    }
    expect(events).not.toContain('expired');
    clock.advance(interval);
    expect(events).toContain('expired');
    actor.stop();
  });

  it('does not expire a token that was refreshed in its window', () => {
    const { clock, events, actor } = harness(2 * 3_600_000);
    clock.advance(61 * interval);
    expect(events).toContain('expiring');
    actor.send({ type: 'TOKEN_REFRESHED', expiresAtMs: clock.now() + 24 * 3_600_000 });
    for (let i = 0; i < 120; i += 1) {
      clock.advance(interval);
      actor.send({ type: 'HEARTBEAT' });
    }
    expect(events).not.toContain('expired');
    actor.stop();
  });

  it('leaves no timer behind once stopped', () => {
    const { clock, actor } = harness();
    clock.advance(interval);
    actor.send({ type: 'HEARTBEAT' });
    expect(clock.pendingTimers).toBeGreaterThan(0);
    actor.send({ type: 'SOCKET_CLOSED' });
    actor.stop();
    expect(clock.pendingTimers).toBe(0);
  });
});
