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
 *
 * Budgets exist once per agent, for 100,000 agents, so each is one object
 * holding one flat string (`packed-log.ts` explains the packing), laid out
 * in 16-bit code units as
 *
 *   [rules] [refresh count] [refresh times: 3 each…] [report times: 3 each…]
 *
 * where `rules` indexes the few limit sets this process uses, beside the
 * last heartbeat's time as a small integer. An agent with a few events in
 * its windows costs under 100 bytes.
 */
import type { BudgetPolicy, WindowSpec } from '../config/config.ts';
import {
  encodeInto,
  flat,
  type PackedLog,
  pack,
  timeAtUnit,
  times,
  unitsPerTime,
} from './packed-log.ts';
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

interface BudgetRules {
  readonly policy: BudgetPolicy;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatWindowMs: number;
}

/** The limit sets in use, indexed from each record; a daemon has one. */
const rulesTable: BudgetRules[] = [];

function rulesIndex(policy: BudgetPolicy, heartbeatIntervalMs: number): number {
  const found = rulesTable.findIndex(
    (r) => r.policy === policy && r.heartbeatIntervalMs === heartbeatIntervalMs,
  );
  if (found !== -1) return found;
  if (rulesTable.length >= 0xffff) throw new Error('too many budget policies in one process');
  rulesTable.push({
    policy,
    heartbeatIntervalMs,
    heartbeatWindowMs: heartbeatWindowMs(heartbeatIntervalMs),
  });
  return rulesTable.length - 1;
}

/** Where the parts of a record are, in code units. */
interface Layout {
  readonly rules: BudgetRules;
  readonly refreshStart: number;
  readonly threatStart: number;
  readonly end: number;
}

const headerUnits = 2;

function layoutOf(record: string): Layout {
  const threatStart = headerUnits + record.charCodeAt(1) * unitsPerTime;
  return {
    rules: rulesTable[record.charCodeAt(0)]!,
    refreshStart: headerUnits,
    threatStart,
    end: record.length,
  };
}

/** Heartbeat times are kept in whole deciseconds, as a small integer field. */
const decisecondMs = 100;
const noHeartbeat = -1;

export class AgentBudgets {
  #record: string;
  /**
   * The last counted heartbeat in deciseconds of the monotonic clock, or -1:
   * an integer that fits a V8 small integer, so the field holds it in place
   * instead of boxing a number per agent. Rounding down makes the window at
   * most 100 ms more lenient.
   */
  #heartbeatDs = noHeartbeat;

  constructor(policy: BudgetPolicy, heartbeatIntervalMs: number) {
    this.#record = String.fromCharCode(rulesIndex(policy, heartbeatIntervalMs), 0);
  }

  spend(name: AgentBudgetName, nowMonoMs: number): BudgetDecision {
    const layout = layoutOf(this.#record);
    if (name === 'heartbeat') return this.#spendHeartbeat(layout, nowMonoMs);
    const policy = layout.rules.policy;
    const spec = name === 'threat' ? policy.threatsPerAgent : policy.refreshesPerAgent;
    if (!spec) return allowed;
    return this.#spendWindow(layout, name, spec, nowMonoMs);
  }

  #spendHeartbeat(layout: Layout, nowMonoMs: number): BudgetDecision {
    if (this.#heartbeatDs !== noHeartbeat) {
      const waitMs = this.#heartbeatDs * decisecondMs + layout.rules.heartbeatWindowMs - nowMonoMs;
      if (waitMs > 0) return { allowed: false, retryAfterMs: waitMs };
    }
    this.#heartbeatDs = Math.max(0, Math.floor(nowMonoMs / decisecondMs));
    return allowed;
  }

  /** A sliding window over the report or refresh times of the record. */
  #spendWindow(
    layout: Layout,
    name: 'threat' | 'refresh',
    spec: WindowSpec,
    nowMonoMs: number,
  ): BudgetDecision {
    const record = this.#record;
    const start = name === 'threat' ? layout.threatStart : layout.refreshStart;
    const end = name === 'threat' ? layout.end : layout.threatStart;
    let firstLive = start;
    while (firstLive < end && timeAtUnit(record, firstLive) <= nowMonoMs - spec.windowMs) {
      firstLive += unitsPerTime;
    }
    const live = (end - firstLive) / unitsPerTime;
    if (live >= spec.limit) {
      const oldest = timeAtUnit(record, end - spec.limit * unitsPerTime);
      return { allowed: false, retryAfterMs: Math.max(1, oldest + spec.windowMs - nowMonoMs) };
    }
    const refreshCount =
      name === 'refresh' ? live + 1 : (layout.threatStart - layout.refreshStart) / unitsPerTime;
    const units = [record.charCodeAt(0), refreshCount];
    this.#copy(units, layout.refreshStart, start);
    this.#copy(units, firstLive, end);
    encodeInto(units, nowMonoMs);
    this.#copy(units, end, layout.end);
    this.#record = flat(units);
    return allowed;
  }

  #copy(units: number[], from: number, to: number): void {
    for (let i = from; i < to; i += 1) units.push(this.#record.charCodeAt(i));
  }

  /** The logs as wall-clock times, for storage. */
  snapshot(nowMonoMs: number, nowWallMs: number): BudgetSnapshot {
    const toWall = (t: number) => Math.round(nowWallMs - (nowMonoMs - t));
    const layout = layoutOf(this.#record);
    const record = this.#record;
    const heartbeat = this.#heartbeatDs === noHeartbeat ? [] : [this.#heartbeatDs * decisecondMs];
    return {
      threat: times(record.slice(layout.threatStart, layout.end)).map(toWall),
      refresh: times(record.slice(layout.refreshStart, layout.threatStart)).map(toWall),
      heartbeat: heartbeat.map(toWall),
    };
  }

  /** Takes stored logs back as monotonic times; entries from the future are dropped. */
  restore(stored: Partial<BudgetSnapshot>, nowMonoMs: number, nowWallMs: number): void {
    const toMono = (logged: readonly number[] | undefined): number[] =>
      (Array.isArray(logged) ? logged : [])
        .filter((t) => typeof t === 'number' && Number.isFinite(t) && t <= nowWallMs)
        .map((t) => nowMonoMs - (nowWallMs - t))
        .sort((a, b) => a - b);
    const heartbeatAt = toMono(stored.heartbeat).at(-1);
    this.#heartbeatDs =
      heartbeatAt === undefined ? noHeartbeat : Math.max(0, Math.floor(heartbeatAt / decisecondMs));
    const refresh: PackedLog = pack(toMono(stored.refresh));
    const threat: PackedLog = pack(toMono(stored.threat));
    const units = [this.#record.charCodeAt(0), refresh.length / unitsPerTime];
    for (const part of [refresh, threat]) {
      for (let i = 0; i < part.length; i += 1) units.push(part.charCodeAt(i));
    }
    this.#record = flat(units);
  }
}
