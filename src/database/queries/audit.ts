/** Appends to and reads the audit trail; the table refuses UPDATE and DELETE. */
import { type CommonQueryMethods, sql } from 'slonik';
import { type AuditEvent, type AuditRow, auditRow } from '../rows.ts';

const auditColumns = sql.fragment`
  id, seq::text AS cursor, agent_id, event_type, severity, actor, action, result,
  "timestamp", details`;

export async function insertAuditEvents(
  db: CommonQueryMethods,
  events: readonly AuditEvent[],
): Promise<void> {
  if (events.length === 0) return;
  const tuples = events.map((event) => [
    event.agentId ?? null,
    event.eventType,
    event.severity,
    event.actor,
    event.action,
    event.result,
    JSON.stringify(event.details ?? {}),
  ]);
  await db.query(sql.unsafe`
    INSERT INTO audit_logs (agent_id, event_type, severity, actor, action, result, details)
    SELECT agent_id, event_type, severity, actor, action, result, details::jsonb
    FROM ${sql.unnest(tuples, ['uuid', 'text', 'text', 'text', 'text', 'text', 'text'])}
      AS e(agent_id, event_type, severity, actor, action, result, details)`);
}

export interface AuditFilter {
  readonly after?: number;
  readonly eventType?: string;
  readonly agentId?: string;
  readonly limit: number;
}

/** Newest first; `after` is the cursor of the last row of the previous page. */
export async function listAuditEvents(
  db: CommonQueryMethods,
  filter: AuditFilter,
): Promise<readonly AuditRow[]> {
  const conditions = [
    filter.after === undefined ? null : sql.fragment`seq < ${filter.after}`,
    filter.eventType === undefined ? null : sql.fragment`event_type = ${filter.eventType}`,
    filter.agentId === undefined ? null : sql.fragment`agent_id = ${filter.agentId}`,
  ];
  return db.any(sql.type(auditRow)`
    SELECT ${auditColumns} FROM audit_logs
    WHERE ${sql.and(conditions)}
    ORDER BY seq DESC LIMIT ${filter.limit}`);
}
