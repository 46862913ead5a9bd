/**
 * An exact sliding-window budget: at most `limit` events in any `windowMs`.
 * It keeps the times of the events it counted (oldest first), on a monotonic
 * clock, so a refusal can say exactly when the oldest counted event leaves
 * the window, and stepping the wall clock changes nothing. Nothing resets on
 * the hour.
 *
 * Memory matters here (one set of logs per agent, 100,000 agents): a log is
 * `null` until its first event, and is replaced by an exact-size copy on each
 * change rather than grown in place, since V8 gives an array that grows by
 * `push` room for 17 elements. An agent with three reports in the last hour
 * costs three numbers, not `limit` of them nor 17.
 */

import type { WindowSpec } from '../config/config.ts';

export type { WindowSpec };

export type BudgetDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number };

const allowed: BudgetDecision = Object.freeze({ allowed: true });

/** A log of event times, oldest first; `null` is the empty log. */
export type TimeLog = readonly number[] | null;

/** How many of the oldest times have left the window ending at `nowMs`. */
function expiredCount(times: readonly number[], spec: WindowSpec, nowMs: number): number {
  let expired = 0;
  while (expired < times.length && times[expired]! <= nowMs - spec.windowMs) expired += 1;
  return expired;
}

/** The outcome of a spend: the decision and the log to keep. */
export interface Spent {
  readonly decision: BudgetDecision;
  readonly log: TimeLog;
}

/**
 * Counts an event at `nowMs` when the window has room; otherwise refuses and
 * counts nothing. Returns the new log; the given one is not changed.
 */
export function spendLog(log: TimeLog, spec: WindowSpec, nowMs: number): Spent {
  const times = log ?? [];
  const live = times.length - expiredCount(times, spec, nowMs);
  if (live < spec.limit) {
    const next = new Array<number>(live + 1);
    for (let i = 0; i < live; i += 1) next[i] = times[times.length - live + i]!;
    next[live] = nowMs;
    return { decision: allowed, log: next };
  }
  const oldest = times[times.length - spec.limit]!;
  const retryAfterMs = Math.max(1, oldest + spec.windowMs - nowMs);
  return {
    decision: { allowed: false, retryAfterMs },
    log: times.length === live ? log : times.slice(-live),
  };
}

/** Drops the times that have left the window ending at `nowMs`, in place. */
function prune(times: number[], spec: WindowSpec, nowMs: number): void {
  const expired = expiredCount(times, spec, nowMs);
  if (expired > 0) times.splice(0, expired);
}

/** `spendLog` on a log the caller owns and lets change in place. */
export function spend(times: number[], spec: WindowSpec, nowMs: number): BudgetDecision {
  const spent = spendLog(times, spec, nowMs);
  if (spent.log !== times) times.splice(0, times.length, ...(spent.log ?? []));
  return spent.decision;
}

/** What `spend` would decide, without counting anything. */
export function peek(times: number[], spec: WindowSpec, nowMs: number): BudgetDecision {
  prune(times, spec, nowMs);
  if (times.length < spec.limit) return allowed;
  const oldest = times[times.length - spec.limit]!;
  return { allowed: false, retryAfterMs: Math.max(1, oldest + spec.windowMs - nowMs) };
}

/** Counts an event whatever the budget says, keeping only the `limit` newest. */
export function record(times: number[], spec: WindowSpec, nowMs: number): void {
  prune(times, spec, nowMs);
  times.push(nowMs);
  if (times.length > spec.limit) times.splice(0, times.length - spec.limit);
}
