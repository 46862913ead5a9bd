/**
 * The per-agent budgets of the contract, kept in the agent's actor and keyed
 * by agent (not socket), so reconnecting resets nothing:
 *
 * - threat reports: 100 an hour (configurable);
 * - token refreshes: 10 an hour (configurable);
 * - heartbeats: "1 a minute" for a 60 s interval. The window is three
 *   quarters of the heartbeat interval with a limit of one, so an agent on
 *   its period with a few seconds of jitter (gaps of 55–65 s) is never
 *   refused, while a second heartbeat 20 s after the first is.
 *
 * Times are monotonic milliseconds. `snapshot()`/`restore()` carry them
 * across restarts and daemons as wall-clock times. The heartbeat log, whose
 * limit is one, is a single number; the others are packed into strings
 * (`packed-log.ts`), empty until used: budgets exist once per agent.
 */
import type { BudgetPolicy } from '../config/config.ts';
import { type PackedLog, pack, spendPacked, times } from './packed-log.ts';
import type { BudgetDecision } from './sliding-window.ts';

export type AgentBudgetName = 'threat' | 'refresh' | 'heartbeat';

/** Three quarters of the interval: a heartbeat early by a quarter is still accepted. */
export function heartbeatWindowMs(heartbeatIntervalMs: number): number {
  return Math.floor((heartbeatIntervalMs * 3) / 4);
}

/** Budget state as stored: wall-clock epoch milliseconds. */
export interface BudgetSnapshot {
  readonly threat: readonly number[];
  readonly refresh: readonly number[];
  readonly heartbeat: readonly number[];
}

const allowed: BudgetDecision = Object.freeze({ allowed: true });

export class AgentBudgets {
  threat: PackedLog = '';
  refresh: PackedLog = '';
  /** When the last counted heartbeat came; NaN before the first. */
  heartbeatAt = Number.NaN;
  readonly #policy: BudgetPolicy;
  readonly #heartbeatWindowMs: number;

  constructor(policy: BudgetPolicy, heartbeatIntervalMs: number) {
    this.#policy = policy;
    this.#heartbeatWindowMs = heartbeatWindowMs(heartbeatIntervalMs);
  }

  spend(name: AgentBudgetName, nowMonoMs: number): BudgetDecision {
    if (name === 'heartbeat') return this.#spendHeartbeat(nowMonoMs);
    const spec = name === 'threat' ? this.#policy.threatsPerAgent : this.#policy.refreshesPerAgent;
    if (!spec) return allowed;
    const spent = spendPacked(this[name], spec, nowMonoMs);
    this[name] = spent.log;
    return spent.decision;
  }

  #spendHeartbeat(nowMonoMs: number): BudgetDecision {
    const waitMs = this.heartbeatAt + this.#heartbeatWindowMs - nowMonoMs;
    if (waitMs > 0) return { allowed: false, retryAfterMs: waitMs };
    this.heartbeatAt = nowMonoMs;
    return allowed;
  }

  /** The logs as wall-clock times, for storage. */
  snapshot(nowMonoMs: number, nowWallMs: number): BudgetSnapshot {
    const toWall = (t: number) => Math.round(nowWallMs - (nowMonoMs - t));
    return {
      threat: times(this.threat).map(toWall),
      refresh: times(this.refresh).map(toWall),
      heartbeat: Number.isNaN(this.heartbeatAt) ? [] : [toWall(this.heartbeatAt)],
    };
  }

  /** Takes stored logs back as monotonic times; entries from the future are dropped. */
  restore(stored: Partial<BudgetSnapshot>, nowMonoMs: number, nowWallMs: number): void {
    const toMono = (logged: readonly number[] | undefined): number[] =>
      (Array.isArray(logged) ? logged : [])
        .filter((t) => typeof t === 'number' && Number.isFinite(t) && t <= nowWallMs)
        .map((t) => nowMonoMs - (nowWallMs - t))
        .sort((a, b) => a - b);
    this.threat = pack(toMono(stored.threat));
    this.refresh = pack(toMono(stored.refresh));
    this.heartbeatAt = toMono(stored.heartbeat).at(-1) ?? Number.NaN;
  }
}
