/**
 * An exact sliding-window budget: at most `limit` events in any `windowMs`.
 * It keeps the times of the events it counted (oldest first), on a monotonic
 * clock, so a refusal can say exactly when the oldest counted event leaves
 * the window, and stepping the wall clock changes nothing. Nothing resets on
 * the hour.
 *
 * This array form serves budgets kept per IP (`failure-budget.ts`); the
 * per-agent budgets, which exist 100,000 times over, keep the same logs
 * packed into strings (`agent-budgets.ts`, `packed-log.ts`).
 */

import type { WindowSpec } from '../config/config.ts';

export type { WindowSpec };

export type BudgetDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number };

const allowed: BudgetDecision = Object.freeze({ allowed: true });

/** How many of the oldest times have left the window ending at `nowMs`. */
function expiredCount(times: readonly number[], spec: WindowSpec, nowMs: number): number {
  let expired = 0;
  while (expired < times.length && times[expired]! <= nowMs - spec.windowMs) expired += 1;
  return expired;
}

/** Drops the times that have left the window ending at `nowMs`, in place. */
function prune(times: number[], spec: WindowSpec, nowMs: number): void {
  const expired = expiredCount(times, spec, nowMs);
  if (expired > 0) times.splice(0, expired);
}

/**
 * Counts an event at `nowMs` when the window has room; otherwise refuses and
 * counts nothing. `times` is the caller's log, changed in place.
 */
export function spend(times: number[], spec: WindowSpec, nowMs: number): BudgetDecision {
  const refused = peek(times, spec, nowMs);
  if (refused.allowed) times.push(nowMs);
  return refused;
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
