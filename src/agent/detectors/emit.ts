/**
 * How a detection becomes a report in the outbox: checked by the same rules
 * as a line on standard input, then offered to the outbox until it takes it.
 *
 * Report ids are derived from what was detected (a file, its generation, a
 * log line's place), not drawn at random. A detector that stops between
 * storing a report and saving its own progress detects the same thing again
 * after a restart; the same id makes the outbox keep it once and the server
 * store it once.
 */
import { createHash } from 'node:crypto';
import { isClientError } from '../errors.ts';
import { parseReportLine, type ThreatReport } from '../report.ts';
import { type DetectorContext, pause } from './detector.ts';

/** A threat as a detector describes it, before it is checked. */
export interface Detection {
  readonly id: string;
  readonly threat_type: string;
  readonly severity: number;
  readonly title: string;
  readonly details: Record<string, unknown>;
  /** Wall-clock milliseconds of the event. */
  readonly detectedAtMs: number;
}

const maxTitleLength = 256;

/**
 * A UUID (version 8, RFC 9562) derived from the parts: the same parts give
 * the same id, different parts a different one.
 */
export function derivedReportId(...parts: readonly string[]): string {
  const digest = createHash('sha256').update(JSON.stringify(parts)).digest();
  const bytes = digest.subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return [
    hex.slice(0, 8),
    hex.slice(8, 12),
    hex.slice(12, 16),
    hex.slice(16, 20),
    hex.slice(20, 32),
  ].join('-');
}

/** Shortens a title to what the server accepts, marking the cut. */
export function fitTitle(title: string): string {
  const flat = title.replace(/\p{Cc}/gu, ' ').trim();
  if (flat.length <= maxTitleLength) return flat;
  return `${flat.slice(0, maxTitleLength - 1)}…`;
}

/**
 * Checks a detection as the server would and stores it in the outbox,
 * waiting while the outbox is full. Throws `invalid_report` for a detection
 * the server would refuse (a detector bug, never retried).
 */
export async function emitDetection(
  detection: Detection,
  context: DetectorContext,
): Promise<ThreatReport | undefined> {
  const report = parseReportLine(
    JSON.stringify({
      id: detection.id,
      threat_type: detection.threat_type,
      severity: detection.severity,
      title: fitTitle(detection.title),
      details: detection.details,
      detected_at: new Date(detection.detectedAtMs).toISOString(),
    }),
  );

  let warned = false;
  while (!context.signal.aborted) {
    try {
      await context.submit(report);
      return report;
    } catch (error) {
      if (!isClientError(error, 'outbox_full')) throw error;
      if (!warned) context.logger.warn({ reportId: report.id }, 'detector:outbox_full');
      warned = true;
      await pause(context.clock, context.fullOutboxWaitMs ?? 1_000, context.signal);
    }
  }
  return undefined;
}
