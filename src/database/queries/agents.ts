/** Agent rows: identity lookups for enrollment, listing for the admin API. */
import { type CommonQueryMethods, sql } from 'slonik';
import { z } from 'zod';
import { type AgentRow, type AgentStatus, agentRow } from '../rows.ts';

const agentColumns = sql.fragment`
  id, hostname, machine_id, host(ip_address) AS ip_address, status, last_heartbeat,
  registered_at`;

/** The identity an agent is known by: its machine id when it sent one, else its hostname. */
export function agentIdentity(hostname: string, machineId: string | undefined): string {
  return machineId ? `machine:${machineId}` : `host:${hostname}`;
}

/**
 * Inserts the agent or, for a known identity, updates its hostname and
 * address; tells which it was. Locks the row for the enclosing transaction.
 */
export async function upsertAgent(
  db: CommonQueryMethods,
  agent: { hostname: string; machineId: string | undefined; ipAddress: string },
): Promise<{ id: string; created: boolean }> {
  return db.one(sql.type(z.object({ id: z.string(), created: z.boolean() }))`
    INSERT INTO agents (hostname, machine_id, identity, ip_address)
    VALUES (${agent.hostname}, ${agent.machineId ?? null},
      ${agentIdentity(agent.hostname, agent.machineId)}, ${agent.ipAddress}::inet)
    ON CONFLICT (identity) DO UPDATE
      SET hostname = EXCLUDED.hostname, ip_address = EXCLUDED.ip_address
    RETURNING id, (xmax = 0) AS created`);
}

export async function findAgent(db: CommonQueryMethods, id: string): Promise<AgentRow | null> {
  return db.maybeOne(sql.type(agentRow)`SELECT ${agentColumns} FROM agents WHERE id = ${id}`);
}

export async function listAgents(
  db: CommonQueryMethods,
  filter: { status?: AgentStatus; limit: number },
): Promise<readonly AgentRow[]> {
  const where =
    filter.status === undefined ? sql.fragment`TRUE` : sql.fragment`status = ${filter.status}`;
  return db.any(sql.type(agentRow)`
    SELECT ${agentColumns} FROM agents WHERE ${where}
    ORDER BY hostname, id LIMIT ${filter.limit}`);
}
