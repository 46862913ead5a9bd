/**
 * Threat reports as the agent takes them in (one JSON object per input line)
 * and as it sends them (`threat` frames). Input is checked here, before it
 * reaches the outbox, so that a report the server can never accept does not
 * sit at the head of the outbox forever.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { detectedAtSchema, severitySchema, threatTypeSchema } from '../sessions/protocol.ts';
import { ClientError } from './errors.ts';

/** The server closes a socket on a frame over 64 KiB; stay clear of it. */
export const maxReportFrameBytes = 60 * 1024;

/** A report ready to send, as it is kept in the outbox. */
export interface ThreatReport {
  readonly id: string;
  readonly threat_type: string;
  readonly severity: number;
  readonly title: string;
  readonly details: Record<string, unknown>;
  readonly detected_at: string;
}

/** Checked as the daemon checks a `threat` frame, so that what it refuses never queues. */
const reportInputSchema = z.strictObject({
  id: z.uuid().optional(),
  threat_type: threatTypeSchema,
  severity: severitySchema,
  title: z.string().trim().min(1).max(256),
  details: z.record(z.string(), z.unknown()).optional(),
  detected_at: detectedAtSchema.optional(),
});

/** The stored form, checked again when the outbox is read back from disk. */
export const threatReportSchema = z.object({
  id: z.uuid(),
  threat_type: z.string().min(1),
  severity: z.int().min(1).max(10),
  title: z.string().min(1),
  details: z.record(z.string(), z.unknown()),
  detected_at: z.string().min(1),
});

/**
 * Turns one input line into a report, filling in `id` and `detected_at` when
 * they are absent. Throws `invalid_report` with the reason when the line is
 * not a valid report.
 */
export function parseReportLine(line: string, now: () => number = Date.now): ThreatReport {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new ClientError('invalid_report', { message: 'the line is not JSON', cause: error });
  }

  const result = reportInputSchema.safeParse(value);
  if (!result.success) {
    throw new ClientError('invalid_report', { message: describeIssues(result.error) });
  }

  const input = result.data;
  const report: ThreatReport = {
    id: input.id ?? randomUUID(),
    threat_type: input.threat_type,
    severity: input.severity,
    title: input.title,
    details: input.details ?? {},
    detected_at: input.detected_at ?? new Date(now()).toISOString(),
  };
  const frameBytes = Buffer.byteLength(JSON.stringify(threatFrame(report)));
  if (frameBytes > maxReportFrameBytes) {
    throw new ClientError('invalid_report', {
      message: `the report is ${frameBytes} bytes; the limit is ${maxReportFrameBytes}`,
    });
  }
  return report;
}

/** The `threat` frame that carries a report to the server. */
export function threatFrame(report: ThreatReport): { type: 'threat' } & ThreatReport {
  return {
    type: 'threat',
    id: report.id,
    threat_type: report.threat_type,
    severity: report.severity,
    title: report.title,
    details: report.details,
    detected_at: report.detected_at,
  };
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join('.') || '(line)'}: ${issue.message}`)
    .join('; ');
}
