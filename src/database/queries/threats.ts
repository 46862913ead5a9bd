/**
 * Threat rows: the batched insert of the write-behind path, the admin API's
 * filtered, cursor-paged listing, the feed's replay, and status changes.
 */
import { type CommonQueryMethods, sql } from 'slonik';
import { z } from 'zod';
import { type ThreatResolution, type ThreatRow, type ThreatStatus, threatRow } from '../rows.ts';

export const threatColumns = sql.fragment`
  id, seq::text AS cursor, agent_id, report_id, threat_type, severity, hostname, title, status,
  detected_at, reported_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,
  resolution, note, details`;

/** A threat as an agent reported it, validated, before it is stored. */
export interface ThreatReport {
  readonly agentId: string;
  readonly reportId: string;
  readonly threatType: string;
  readonly severity: number;
  readonly hostname: string;
  readonly title: string;
  readonly detectedAt: string;
  readonly details: Record<string, unknown>;
}

export interface ThreatFilter {
  readonly status?: ThreatStatus;
  readonly agentId?: string;
  readonly minSeverity?: number;
}

function filterConditions(filter: ThreatFilter) {
  return [
    filter.status === undefined ? null : sql.fragment`status = ${filter.status}`,
    filter.agentId === undefined ? null : sql.fragment`agent_id = ${filter.agentId}`,
    filter.minSeverity === undefined ? null : sql.fragment`severity >= ${filter.minSeverity}`,
  ];
}

/** Newest first; `after` is the cursor of the last row of the previous page. */
export async function listThreats(
  db: CommonQueryMethods,
  filter: ThreatFilter & { after?: number; limit: number },
): Promise<readonly ThreatRow[]> {
  const conditions = [
    ...filterConditions(filter),
    filter.after === undefined ? null : sql.fragment`seq < ${filter.after}`,
  ];
  return db.any(sql.type(threatRow)`
    SELECT ${threatColumns} FROM threats WHERE ${sql.and(conditions)}
    ORDER BY seq DESC LIMIT ${filter.limit}`);
}

/** Oldest first after `since`, for the feed's replay. */
export async function threatsSince(
  db: CommonQueryMethods,
  filter: ThreatFilter & { since: number; limit: number },
): Promise<readonly ThreatRow[]> {
  const conditions = [...filterConditions(filter), sql.fragment`seq > ${filter.since}`];
  return db.any(sql.type(threatRow)`
    SELECT ${threatColumns} FROM threats WHERE ${sql.and(conditions)}
    ORDER BY seq ASC LIMIT ${filter.limit}`);
}

export async function findThreat(db: CommonQueryMethods, id: string): Promise<ThreatRow | null> {
  return db.maybeOne(sql.type(threatRow)`
    SELECT ${threatColumns} FROM threats WHERE id = ${id}`);
}

/** Locks a threat for a status change. */
export async function findThreatForUpdate(
  db: CommonQueryMethods,
  id: string,
): Promise<ThreatRow | null> {
  return db.maybeOne(sql.type(threatRow)`
    SELECT ${threatColumns} FROM threats WHERE id = ${id} FOR UPDATE`);
}

export async function updateThreatStatus(
  db: CommonQueryMethods,
  change: {
    id: string;
    status: ThreatStatus;
    actor: string;
    note: string | null;
    resolution: ThreatResolution | null;
  },
): Promise<ThreatRow> {
  const acknowledged = change.status === 'acknowledged';
  return db.one(sql.type(threatRow)`
    UPDATE threats SET
      status = ${change.status},
      note = COALESCE(${change.note}, note),
      resolution = COALESCE(${change.resolution}, resolution),
      acknowledged_at = CASE WHEN ${acknowledged} THEN now() ELSE acknowledged_at END,
      acknowledged_by = CASE WHEN ${acknowledged} THEN ${change.actor} ELSE acknowledged_by END,
      resolved_at = CASE WHEN ${!acknowledged} THEN now() ELSE resolved_at END,
      resolved_by = CASE WHEN ${!acknowledged} THEN ${change.actor} ELSE resolved_by END
    WHERE id = ${change.id}
    RETURNING ${threatColumns}`);
}

/** Status changes after the update cursor `since`, in the order they committed. */
export async function threatsUpdatedSince(
  db: CommonQueryMethods,
  filter: { since: number; limit: number },
): Promise<ReadonlyArray<ThreatRow & { update_seq: number }>> {
  return db.any(sql.type(threatRow.extend({ update_seq: z.number() }))`
    SELECT ${threatColumns}, update_seq FROM threats WHERE update_seq > ${filter.since}
    ORDER BY update_seq ASC LIMIT ${filter.limit}`);
}

const cursorsRow = z.object({ seq: z.number(), update_seq: z.number() });

/** The newest insert and update cursors: where a fresh listener starts. */
export async function latestThreatCursors(
  db: CommonQueryMethods,
): Promise<{ seq: number; update_seq: number }> {
  return db.one(sql.type(cursorsRow)`
    SELECT COALESCE((SELECT max(seq) FROM threats), 0)::bigint AS seq,
      COALESCE((SELECT max(update_seq) FROM threats), 0)::bigint AS update_seq`);
}
