/**
 * Builds the detectors the agent's options ask for, checking everything that
 * can be checked before the agent starts: the rule file parses, `/proc/net`
 * is there for `--listeners`. A mistake stops the start with a coded error
 * instead of surfacing at the first poll.
 */
import { access } from 'node:fs/promises';
import { ClientError } from '../errors.ts';
import type { Detector, DetectorContext } from './detector.ts';
import { createFileIntegrity } from './file-integrity.ts';
import { createListenerWatch } from './listeners.ts';
import { createLogWatch } from './log-watch.ts';
import { loadRuleFile } from './rules.ts';

/** What the command line chose. */
export interface DetectorOptions {
  readonly watchFiles: readonly string[];
  /** The rule file for `watchFiles`; the shipped one when absent. */
  readonly rulesFile?: string;
  readonly integrityPaths: readonly string[];
  readonly listeners: boolean;
  /** Overrides every detector's polling interval (tests, demos). */
  readonly intervalMs?: number;
  readonly procRoot?: string;
}

/** The detectors to run; an empty list when none was asked for. */
export async function createDetectors(
  options: DetectorOptions,
  context: DetectorContext,
): Promise<Detector[]> {
  if (options.rulesFile !== undefined && options.watchFiles.length === 0) {
    throw new ClientError('invalid_option', { message: '--rules needs --watch-file' });
  }
  const interval = options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs };
  const detectors: Detector[] = [];

  if (options.watchFiles.length > 0) {
    const rules = await loadRuleFile(options.rulesFile);
    for (const path of options.watchFiles) {
      detectors.push(await createLogWatch({ path, rules, ...interval }, context));
    }
  }
  if (options.integrityPaths.length > 0) {
    const settings = { paths: options.integrityPaths, ...interval };
    detectors.push(await createFileIntegrity(settings, context));
  }
  if (options.listeners) {
    const procRoot = options.procRoot ?? '/proc';
    await access(`${procRoot}/net/tcp`).catch((error: unknown) => {
      throw new ClientError('detector_unavailable', {
        message: `--listeners reads ${procRoot}/net/tcp, which cannot be read here (Linux only)`,
        cause: error,
      });
    });
    detectors.push(await createListenerWatch({ procRoot, ...interval }, context));
  }

  const names = detectors.map((detector) => detector.name);
  if (names.length > 0) context.logger.info({ detectors: names }, 'detectors:created');
  return detectors;
}
