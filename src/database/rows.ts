/**
 * The shapes of rows as queries return them (timestamps as ISO strings,
 * sequences as numbers), validated by Slonik on the way out.
 */
import { z } from 'zod';

export const agentStatuses = ['active', 'inactive', 'offline'] as const;
export type AgentStatus = (typeof agentStatuses)[number];

export const threatStatuses = ['open', 'acknowledged', 'resolved'] as const;
export type ThreatStatus = (typeof threatStatuses)[number];

export const threatResolutions = ['true_positive', 'false_positive', 'duplicate'] as const;
export type ThreatResolution = (typeof threatResolutions)[number];

export const adminRoles = ['viewer', 'responder', 'admin'] as const;
export type AdminRole = (typeof adminRoles)[number];

const timestamp = z.string();

export const agentRow = z.object({
  id: z.string(),
  hostname: z.string(),
  machine_id: z.string().nullable(),
  ip_address: z.string().nullable(),
  status: z.enum(agentStatuses),
  last_heartbeat: timestamp.nullable(),
  registered_at: timestamp,
});
export type AgentRow = z.infer<typeof agentRow>;

export const threatRow = z.object({
  id: z.string(),
  cursor: z.string(),
  agent_id: z.string(),
  report_id: z.string(),
  threat_type: z.string(),
  severity: z.number(),
  hostname: z.string(),
  title: z.string(),
  status: z.enum(threatStatuses),
  detected_at: timestamp,
  reported_at: timestamp,
  acknowledged_at: timestamp.nullable(),
  acknowledged_by: z.string().nullable(),
  resolved_at: timestamp.nullable(),
  resolved_by: z.string().nullable(),
  resolution: z.enum(threatResolutions).nullable(),
  note: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});
export type ThreatRow = z.infer<typeof threatRow>;

export const auditRow = z.object({
  id: z.string(),
  cursor: z.string(),
  agent_id: z.string().nullable(),
  event_type: z.string(),
  severity: z.enum(['info', 'warning', 'error', 'critical']),
  actor: z.string(),
  action: z.string(),
  result: z.enum(['success', 'failure']),
  timestamp,
  details: z.record(z.string(), z.unknown()),
});
export type AuditRow = z.infer<typeof auditRow>;

/** An audit event before it is stored. */
export interface AuditEvent {
  readonly agentId?: string | null;
  readonly eventType: string;
  readonly severity: AuditRow['severity'];
  readonly actor: string;
  readonly action: string;
  readonly result: AuditRow['result'];
  readonly details?: Record<string, unknown>;
}
