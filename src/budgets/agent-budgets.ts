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
 * across restarts and daemons as wall-clock times.
 */
import type { BudgetPolicy } from '../config/config.ts';
import { type BudgetDecision, spend, type WindowSpec } from './sliding-window.ts';

export type AgentBudgetName = 'threat' | 'refresh' | 'heartbeat';

export function heartbeatBudget(heartbeatIntervalMs: number): WindowSpec {
  return { limit: 1, windowMs: Math.floor((heartbeatIntervalMs * 3) / 4) };
}

/** Budget state as stored: wall-clock epoch milliseconds. */
export interface BudgetSnapshot {
  readonly threat: readonly number[];
  readonly refresh: readonly number[];
  readonly heartbeat: readonly number[];
}

const allowed: BudgetDecision = Object.freeze({ allowed: true });

export class AgentBudgets {
  threat: number[] = [];
  refresh: number[] = [];
  heartbeat: number[] = [];
  readonly #specs: Readonly<Record<AgentBudgetName, WindowSpec | undefined>>;

  constructor(policy: BudgetPolicy, heartbeatIntervalMs: number) {
    this.#specs = {
      threat: policy.threatsPerAgent,
      refresh: policy.refreshesPerAgent,
      heartbeat: heartbeatBudget(heartbeatIntervalMs),
    };
  }

  spend(name: AgentBudgetName, nowMonoMs: number): BudgetDecision {
    const spec = this.#specs[name];
    return spec ? spend(this[name], spec, nowMonoMs) : allowed;
  }

  /** The logs as wall-clock times, for storage. */
  snapshot(nowMonoMs: number, nowWallMs: number): BudgetSnapshot {
    const toWall = (t: number) => Math.round(nowWallMs - (nowMonoMs - t));
    return {
      threat: this.threat.map(toWall),
      refresh: this.refresh.map(toWall),
      heartbeat: this.heartbeat.map(toWall),
    };
  }

  /** Takes stored logs back as monotonic times; entries from the future are dropped. */
  restore(stored: Partial<BudgetSnapshot>, nowMonoMs: number, nowWallMs: number): void {
    const toMono = (times: readonly number[] | undefined) =>
      (Array.isArray(times) ? times : [])
        .filter((t) => typeof t === 'number' && t <= nowWallMs)
        .map((t) => nowMonoMs - (nowWallMs - t))
        .sort((a, b) => a - b);
    this.threat = toMono(stored.threat);
    this.refresh = toMono(stored.refresh);
    this.heartbeat = toMono(stored.heartbeat);
  }
}
