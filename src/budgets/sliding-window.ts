/**
 * An exact sliding-window budget: at most `limit` events in any `windowMs`.
 * It keeps the times of the events it counted (oldest first), on a monotonic
 * clock, so a refusal can say exactly when the oldest counted event leaves
 * the window, and stepping the wall clock changes nothing. Nothing resets on
 * the hour. The log is a plain array grown only as events arrive, so an agent
 * that sends a few reports an hour costs a few numbers, not `limit` of them.
 */

import type { WindowSpec } from '../config/config.ts';

export type { WindowSpec };

export type BudgetDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number };

const allowed: BudgetDecision = Object.freeze({ allowed: true });

/** Drops the times that have left the window ending at `nowMs`. */
function prune(times: number[], spec: WindowSpec, nowMs: number): void {
  let expired = 0;
  while (expired < times.length && times[expired]! <= nowMs - spec.windowMs) expired += 1;
  if (expired > 0) times.splice(0, expired);
}

/**
 * Counts an event at `nowMs` when the window has room; otherwise refuses and
 * counts nothing. `times` is the caller's log, changed in place.
 */
export function spend(times: number[], spec: WindowSpec, nowMs: number): BudgetDecision {
  prune(times, spec, nowMs);
  if (times.length < spec.limit) {
    times.push(nowMs);
    return allowed;
  }
  const oldest = times[times.length - spec.limit]!;
  return { allowed: false, retryAfterMs: Math.max(1, oldest + spec.windowMs - nowMs) };
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
