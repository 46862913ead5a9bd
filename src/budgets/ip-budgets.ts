/**
 * Budgets keyed by client IP that must hold across daemons (enrollment): the
 * events live in PostgreSQL. A check takes a transaction-scoped advisory lock
 * on the (scope, ip) pair, counts the events still in the window, and either
 * records one more or refuses with the time until the oldest counted event
 * leaves the window. Events older than the window are deleted as it goes.
 */
import { type CommonQueryMethods, type DatabasePool, sql } from 'slonik';
import { z } from 'zod';
import type { BudgetDecision, WindowSpec } from './sliding-window.ts';

const windowState = z.object({ n: z.number(), retry_ms: z.number().nullable() });

export async function spendIpBudget(
  pool: DatabasePool,
  scope: string,
  ip: string,
  spec: WindowSpec,
): Promise<BudgetDecision> {
  return pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(hashtext(${`${scope}|${ip}`}))`);
    await prune(tx, scope, ip, spec.windowMs);
    const state = await tx.one(sql.type(windowState)`
      SELECT count(*)::int AS n,
        (SELECT (extract(epoch FROM at + ${spec.windowMs} * interval '1 millisecond'
            - clock_timestamp()) * 1000)::int
         FROM ip_budget_events
         WHERE scope = ${scope} AND ip = ${ip}::inet
         ORDER BY at DESC OFFSET ${spec.limit - 1} LIMIT 1) AS retry_ms
      FROM ip_budget_events WHERE scope = ${scope} AND ip = ${ip}::inet`);
    if (state.n >= spec.limit) {
      return { allowed: false, retryAfterMs: Math.max(1, state.retry_ms ?? spec.windowMs) };
    }
    await tx.query(sql.unsafe`
      INSERT INTO ip_budget_events (scope, ip) VALUES (${scope}, ${ip}::inet)`);
    return { allowed: true };
  });
}

async function prune(db: CommonQueryMethods, scope: string, ip: string, windowMs: number) {
  await db.query(sql.unsafe`
    DELETE FROM ip_budget_events
    WHERE scope = ${scope} AND ip = ${ip}::inet
      AND at <= clock_timestamp() - ${windowMs} * interval '1 millisecond'`);
}
