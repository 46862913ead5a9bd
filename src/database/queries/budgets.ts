/** Per-agent budget state: written in batches, read when a session opens. */
import { type CommonQueryMethods, sql } from 'slonik';
import type { BudgetSnapshot } from '../../budgets/agent-budgets.ts';

/**
 * Writes the latest budget state of each agent whose newest session this
 * daemon holds: an older session's late write cannot roll back the state the
 * agent's current daemon keeps.
 */
export async function upsertAgentBudgets(
  db: CommonQueryMethods,
  budgets: ReadonlyMap<string, BudgetSnapshot>,
  daemonId: string,
): Promise<void> {
  if (budgets.size === 0) return;
  const tuples = [...budgets].map(([agentId, snapshot]) => [agentId, JSON.stringify(snapshot)]);
  await db.query(sql.unsafe`
    INSERT INTO agent_budgets (agent_id, state)
    SELECT b.agent_id, b.state::jsonb
    FROM ${sql.unnest(tuples, ['uuid', 'text'])} AS b(agent_id, state)
    JOIN agent_sessions s ON s.agent_id = b.agent_id AND s.daemon_id = ${daemonId}
    ON CONFLICT (agent_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()`);
}
