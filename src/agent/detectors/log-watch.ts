/**
 * `--watch-file PATH`: follows a log file and turns lines that match a rule
 * into threats. The report carries the rule, the file, the matching line and
 * the named groups, each with credentials masked; a threshold rule also
 * carries how many matches it counted and over what span.
 */
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Detector, DetectorContext } from './detector.ts';
import { detectorDirectory, stateFileNameFor } from './detector-state.ts';
import { derivedReportId, emitDetection } from './emit.ts';
import { type FollowedLine, LogFollower } from './log-follower.ts';
import { lineTimeMs } from './log-timestamp.ts';
import { maskSecrets } from './mask-secrets.ts';
import { RuleEngine, type RuleMatch, renderTitle } from './rule-engine.ts';
import type { LogRule } from './rules.ts';

export interface LogWatchSettings {
  readonly path: string;
  readonly rules: readonly LogRule[];
  readonly intervalMs?: number;
  readonly maxTrackedKeys?: number;
}

export const logWatchDefaults = Object.freeze({ intervalMs: 1_000 });

/** The longest matching line a report carries; the rest is cut. */
const maxLineChars = 2_048;
const maxGroupChars = 256;

/** Creates the detector for one log file. */
export async function createLogWatch(
  settings: LogWatchSettings,
  context: DetectorContext,
): Promise<Detector> {
  const path = resolve(settings.path);
  const directory = await detectorDirectory(context.stateDirectory);
  const logger = context.logger.child({ detector: 'log_watch', path });
  const engine = new RuleEngine(settings.rules, {
    ...(settings.maxTrackedKeys ? { maxTrackedKeys: settings.maxTrackedKeys } : {}),
  });

  const watchOnLine = async (line: FollowedLine): Promise<void> => {
    const atMs = lineTimeMs(line.text, context.clock.now());
    const match = engine.evaluate(line.text, atMs);
    if (!match) return;
    const report = await emitDetection(detectionOf(path, line, match, atMs), context);
    if (report) {
      logger.info({ rule: match.rule.name, reportId: report.id }, 'watch:threat_detected');
    }
  };

  const follower = new LogFollower({
    path,
    progressFile: join(directory, stateFileNameFor('log', path)),
    logger,
    onLine: watchOnLine,
  });

  return {
    name: 'log_watch',
    intervalMs: settings.intervalMs ?? logWatchDefaults.intervalMs,
    poll: () => follower.poll(),
    close: () => follower.close(),
  };
}

function detectionOf(path: string, line: FollowedLine, match: RuleMatch, atMs: number) {
  const rule = match.rule;
  const groups = Object.fromEntries(
    Object.entries(match.groups).map(([name, value]) => [
      name,
      maskSecrets(value).slice(0, maxGroupChars),
    ]),
  );
  const lineDigest = createHash('sha256').update(line.text).digest('hex');
  return {
    id: derivedReportId('log', path, line.fileId, String(line.endOffset), lineDigest, rule.name),
    threat_type: rule.threatType,
    severity: rule.severity,
    title: renderTitle(rule.title, groups),
    details: {
      detector: 'log_watch',
      rule: rule.name,
      file: path,
      line: maskSecrets(line.text).slice(0, maxLineChars),
      fields: groups,
      ...(rule.threshold
        ? {
            count: match.count,
            within_s: rule.threshold.withinMs / 1_000,
            first_seen_at: new Date(match.firstAtMs).toISOString(),
          }
        : {}),
    },
    detectedAtMs: atMs,
  };
}
