/** Budgets on simulated time: sliding windows, jitter tolerance, restarts, batching. */
import { describe, expect, it } from 'vitest';
import { AgentBudgets } from '../../src/budgets/agent-budgets.ts';
import { FailureBudget } from '../../src/budgets/failure-budget.ts';
import { pack, times } from '../../src/budgets/packed-log.ts';
import { RefusalLedger } from '../../src/budgets/refusals.ts';
import { spend } from '../../src/budgets/sliding-window.ts';
import { ManualClock } from '../../src/clock/clock.ts';
import type { BudgetPolicy } from '../../src/config/config.ts';
import type { AuditEvent } from '../../src/database/rows.ts';

const hour = 3_600_000;
const policy: BudgetPolicy = {
  enrollmentPerIp: { limit: 5, windowMs: hour },
  threatsPerAgent: { limit: 100, windowMs: hour },
  refreshesPerAgent: { limit: 10, windowMs: hour },
  authFailuresPerIp: { limit: 3, windowMs: 600_000 },
};

describe('a sliding window', () => {
  it('refuses the event past the limit until the oldest counted one leaves the window', () => {
    const times: number[] = [];
    const spec = { limit: 5, windowMs: hour };
    for (let i = 0; i < 5; i += 1)
      expect(spend(times, spec, 1_000 + i * 60_000).allowed).toBe(true);
    const refused = spend(times, spec, 10 * 60_000);
    expect(refused).toEqual({ allowed: false, retryAfterMs: 1_000 + hour - 10 * 60_000 });
    if (refused.allowed) return;
    expect(spend(times, spec, 10 * 60_000 + refused.retryAfterMs - 1).allowed).toBe(false);
    expect(spend(times, spec, 10 * 60_000 + refused.retryAfterMs).allowed).toBe(true);
  });

  it('does not reset on the hour: a burst late in one hour still counts early in the next', () => {
    const times: number[] = [];
    const spec = { limit: 5, windowMs: hour };
    for (let i = 0; i < 5; i += 1) spend(times, spec, hour - 60_000 + i);
    expect(spend(times, spec, hour + 1_000).allowed).toBe(false);
    expect(spend(times, spec, 2 * hour - 60_000 + 1).allowed).toBe(true);
  });

  it('refuses without counting, so retrying early does not push the window out', () => {
    const times: number[] = [];
    const spec = { limit: 1, windowMs: 1_000 };
    spend(times, spec, 0);
    for (let t = 100; t < 1_000; t += 100) expect(spend(times, spec, t).allowed).toBe(false);
    expect(spend(times, spec, 1_000).allowed).toBe(true);
  });
});

describe('agent budgets', () => {
  it('never refuse an agent on a 60 s period with ±5 s of jitter, for hours', () => {
    const clock = new ManualClock();
    const budgets = new AgentBudgets(policy, 60_000);
    let previousJitter = 0;
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    for (let beat = 0; beat < 12 * 60; beat += 1) {
      const jitter = Math.round((random() * 2 - 1) * 5_000);
      clock.advance(60_000 + jitter - previousJitter);
      previousJitter = jitter;
      expect(budgets.spend('heartbeat', clock.monotonicMs()).allowed).toBe(true);
    }
  });

  it('refuse a second heartbeat 20 s after the first', () => {
    const clock = new ManualClock();
    const budgets = new AgentBudgets(policy, 60_000);
    expect(budgets.spend('heartbeat', clock.monotonicMs()).allowed).toBe(true);
    clock.advance(20_000);
    const refused = budgets.spend('heartbeat', clock.monotonicMs());
    expect(refused).toEqual({ allowed: false, retryAfterMs: 25_000 });
  });

  it('ignore steps of the wall clock, forward or back', () => {
    const clock = new ManualClock();
    const budgets = new AgentBudgets(policy, 60_000);
    for (let i = 0; i < 100; i += 1) budgets.spend('threat', clock.monotonicMs());
    clock.stepWallClock(2 * hour);
    expect(budgets.spend('threat', clock.monotonicMs()).allowed).toBe(false);
    clock.stepWallClock(-5 * hour);
    clock.advance(hour);
    expect(budgets.spend('threat', clock.monotonicMs()).allowed).toBe(true);
  });

  it('come back from a snapshot taken before a restart with the same refusals', () => {
    const before = new ManualClock();
    const budgets = new AgentBudgets(policy, 60_000);
    for (let i = 0; i < 10; i += 1) {
      before.advance(60_000);
      budgets.spend('refresh', before.monotonicMs());
    }
    const stored = budgets.snapshot(before.monotonicMs(), before.now());
    const after = new ManualClock(before.now() + 30_000 - 1_000_000);
    after.advance(1_000_000);
    const restored = new AgentBudgets(policy, 60_000);
    restored.restore(JSON.parse(JSON.stringify(stored)), after.monotonicMs(), after.now());
    const refused = restored.spend('refresh', after.monotonicMs());
    expect(refused.allowed).toBe(false);
    if (!refused.allowed) expect(refused.retryAfterMs).toBe(hour - 10 * 60_000 + 60_000 - 30_000);
  });
});

describe('the failed-authentication budget', () => {
  it('refuses an IP after its failures, for the rest of the window, and no other IP', () => {
    const clock = new ManualClock();
    const failures = new FailureBudget({ limit: 3, windowMs: 600_000 }, clock);
    for (let i = 0; i < 3; i += 1) failures.fail('198.51.100.7');
    expect(failures.check('198.51.100.7')).toEqual({ allowed: false, retryAfterMs: 600_000 });
    expect(failures.check('198.51.100.8').allowed).toBe(true);
    clock.advance(600_000);
    expect(failures.check('198.51.100.7').allowed).toBe(true);
  });

  it('keeps a bounded table of addresses', () => {
    const failures = new FailureBudget({ limit: 3, windowMs: 600_000 }, new ManualClock(), 100);
    for (let i = 0; i < 1_000; i += 1) failures.fail(`10.0.${Math.floor(i / 250)}.${i % 250}`);
    expect(failures.trackedIps).toBe(100);
  });
});

describe('the refusal ledger', () => {
  it('counts every refusal but audits each budget and key once per period', () => {
    const clock = new ManualClock();
    const audited: AuditEvent[] = [];
    const ledger = new RefusalLedger(clock, (event) => audited.push(event), 60_000);
    for (let i = 0; i < 500; i += 1) ledger.record({ budget: 'heartbeat', agentId: 'a-1' });
    ledger.record({ budget: 'enrollment', ip: '192.0.2.1' });
    expect(audited).toHaveLength(0);
    clock.advance(60_000);
    expect(audited).toHaveLength(2);
    expect(audited[0]!.details).toMatchObject({ budget: 'heartbeat', count: 500 });
    expect(ledger.totals().get('heartbeat')).toBe(500);
  });
});

describe('a packed log', () => {
  it('gives back the exact times it holds, before and long after the process started', () => {
    const held = [-3_600_000, -1, 0, 1, 1_234_567.0, 30 * 24 * 3_600_000, 5 * 365 * 86_400_000];
    expect(times(pack(held))).toEqual(held);
  });

  it('decides like the array log, event for event, inside agent budgets', () => {
    const spec = { limit: 3, windowMs: 10_000 };
    const budgets = new AgentBudgets({ ...policy, threatsPerAgent: spec }, 60_000);
    const plain: number[] = [];
    for (let t = 0; t < 60_000; t += 1_700) {
      expect(budgets.spend('threat', t)).toEqual(spend(plain, spec, t));
    }
    expect(budgets.snapshot(60_000, 60_000).threat).toEqual(plain);
  });
});
