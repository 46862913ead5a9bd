/** Per-agent budget state: written in batches, read when a session opens. */
import { type CommonQueryMethods, sql } from 'slonik';
import type { BudgetSnapshot } from '../../budgets/agent-budgets.ts';

export async function upsertAgentBudgets(
  db: CommonQueryMethods,
  budgets: ReadonlyMap<string, BudgetSnapshot>,
): Promise<void> {
  if (budgets.size === 0) return;
  const tuples = [...budgets].map(([agentId, snapshot]) => [agentId, JSON.stringify(snapshot)]);
  await db.query(sql.unsafe`
    INSERT INTO agent_budgets (agent_id, state)
    SELECT agent_id, state::jsonb FROM ${sql.unnest(tuples, ['uuid', 'text'])} AS b(agent_id, state)
    ON CONFLICT (agent_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()`);
}
