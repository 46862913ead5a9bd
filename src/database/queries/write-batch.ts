/**
 * One write-behind batch as one SQL statement: the agents' latest liveness,
 * their budget state, audit rows and threats, each a data-modifying CTE of a
 * single `WITH … INSERT`. A single statement is a single implicit transaction
 * — all of it commits or none — and a single round trip, where BEGIN, four
 * statements and COMMIT were six.
 *
 * Liveness and budget state are written only for agents whose session this
 * daemon holds (`agent_sessions`), so an older session elsewhere cannot
 * overwrite what the holding daemon decided. Threats go in report order;
 * reports already stored are skipped, and the statement returns the keys of
 * those stored now.
 */
import { type CommonQueryMethods, type FragmentSqlToken, sql } from 'slonik';
import { z } from 'zod';
import type { BudgetSnapshot } from '../../budgets/agent-budgets.ts';
import type { AgentStatus, AuditEvent } from '../rows.ts';
import type { ThreatReport } from './threats.ts';

export interface LivenessUpdate {
  readonly agentId: string;
  readonly status: AgentStatus;
  readonly lastHeartbeat: string | null;
}

export interface WriteBatch {
  readonly daemonId: string;
  readonly threats: readonly ThreatReport[];
  readonly liveness: readonly LivenessUpdate[];
  readonly budgets: ReadonlyMap<string, BudgetSnapshot>;
  readonly audit: readonly AuditEvent[];
}

const storedKey = z.object({ agent_id: z.string(), report_id: z.string() });

/** Writes the batch; returns the (agent, report) keys of threats stored now. */
export async function writeBatch(
  db: CommonQueryMethods,
  batch: WriteBatch,
): Promise<ReadonlyArray<z.infer<typeof storedKey>>> {
  const steps: FragmentSqlToken[] = [];
  if (batch.liveness.length > 0) steps.push(sql.fragment`liveness AS (${livenessUpdate(batch)})`);
  if (batch.budgets.size > 0) steps.push(sql.fragment`budgets AS (${budgetsUpsert(batch)})`);
  if (batch.audit.length > 0) steps.push(sql.fragment`audit AS (${auditInsert(batch.audit)})`);
  if (batch.threats.length > 0)
    steps.push(sql.fragment`stored AS (${threatInsert(batch.threats)})`);
  if (steps.length === 0) return [];
  const result =
    batch.threats.length > 0
      ? sql.fragment`SELECT agent_id::text, report_id::text FROM stored`
      : sql.fragment`SELECT NULL::text AS agent_id, NULL::text AS report_id WHERE false`;
  return db.any(sql.type(storedKey)`WITH ${sql.join(steps, sql.fragment`, `)} ${result}`);
}

function livenessUpdate(batch: WriteBatch): FragmentSqlToken {
  const tuples = batch.liveness.map((u) => [u.agentId, u.status, u.lastHeartbeat]);
  return sql.fragment`
    UPDATE agents AS a
    SET status = u.status, last_heartbeat = COALESCE(u.last_heartbeat, a.last_heartbeat)
    FROM ${sql.unnest(tuples, ['uuid', 'text', 'timestamptz'])} AS u(id, status, last_heartbeat)
    WHERE a.id = u.id
      AND EXISTS (
        SELECT 1 FROM agent_sessions s WHERE s.agent_id = a.id AND s.daemon_id = ${batch.daemonId}
      )`;
}

function budgetsUpsert(batch: WriteBatch): FragmentSqlToken {
  const tuples = [...batch.budgets].map(([agentId, state]) => [agentId, JSON.stringify(state)]);
  return sql.fragment`
    INSERT INTO agent_budgets (agent_id, state)
    SELECT b.agent_id, b.state::jsonb
    FROM ${sql.unnest(tuples, ['uuid', 'text'])} AS b(agent_id, state)
    JOIN agent_sessions s ON s.agent_id = b.agent_id AND s.daemon_id = ${batch.daemonId}
    ON CONFLICT (agent_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()`;
}

function auditInsert(events: readonly AuditEvent[]): FragmentSqlToken {
  const tuples = events.map((e) => [
    e.agentId ?? null,
    e.eventType,
    e.severity,
    e.actor,
    e.action,
    e.result,
    JSON.stringify(e.details ?? {}),
  ]);
  const types = ['uuid', 'text', 'text', 'text', 'text', 'text', 'text'];
  return sql.fragment`
    INSERT INTO audit_logs (agent_id, event_type, severity, actor, action, result, details)
    SELECT agent_id, event_type, severity, actor, action, result, details::jsonb
    FROM ${sql.unnest(tuples, types)}
      AS e(agent_id, event_type, severity, actor, action, result, details)`;
}

function threatInsert(reports: readonly ThreatReport[]): FragmentSqlToken {
  const tuples = reports.map((r, index) => [
    index,
    r.agentId,
    r.reportId,
    r.threatType,
    r.severity,
    r.hostname,
    r.title,
    r.detectedAt,
    JSON.stringify(r.details),
  ]);
  const types = ['int4', 'uuid', 'uuid', 'text', 'int2', 'text', 'text', 'timestamptz', 'text'];
  return sql.fragment`
    INSERT INTO threats
      (agent_id, report_id, threat_type, severity, hostname, title, detected_at, details)
    SELECT agent_id, report_id, threat_type, severity, hostname, title, detected_at,
      details::jsonb
    FROM ${sql.unnest(tuples, types)}
      AS r(ord, agent_id, report_id, threat_type, severity, hostname, title, detected_at, details)
    ORDER BY ord
    ON CONFLICT (agent_id, report_id) DO NOTHING
    RETURNING agent_id, report_id`;
}
