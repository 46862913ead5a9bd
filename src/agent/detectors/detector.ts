/**
 * What every detector shares: a `poll()` that looks at the host once and
 * reports what changed since the last look, and a loop that polls on an
 * interval of the injected clock until the signal aborts.
 *
 * A failure of the host to answer (a file that cannot be read now, a full
 * disk) is logged, less often as it lasts, and retried at the next poll:
 * detectors advance their saved position only after their reports are in
 * the outbox, so a retried poll
 * neither loses nor repeats a threat. Anything else (a damaged state
 * directory, a bug) ends the loop and is the caller's to handle.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../clock/clock.ts';
import type { ThreatReport } from '../report.ts';

/** What a detector needs from the agent around it. */
export interface DetectorContext {
  /** Stores a report durably (the agent's outbox); may throw `outbox_full`. */
  readonly submit: (report: ThreatReport) => Promise<void>;
  readonly logger: Logger;
  readonly clock: Clock;
  /** The agent's state directory; detectors keep their files in `detectors/` inside it. */
  readonly stateDirectory: string;
  readonly signal: AbortSignal;
  /** How long to wait before offering a report again to a full outbox. */
  readonly fullOutboxWaitMs?: number;
}

/** One source of threats on the host. */
export interface Detector {
  /** Short and stable, for logs: `log_watch`, `file_integrity`, `listeners`. */
  readonly name: string;
  readonly intervalMs: number;
  /** Looks once and reports what is new; resolves when the reports are in the outbox. */
  poll(): Promise<void>;
  /** Releases open files; called once the loop ends. */
  close(): Promise<void>;
}

/** Polls a detector on its interval until the context's signal aborts. */
export async function runDetector(detector: Detector, context: DetectorContext): Promise<void> {
  const log = context.logger.child({ detector: detector.name });
  let failures = 0;
  try {
    while (!context.signal.aborted) {
      try {
        await detector.poll();
        failures = 0;
      } catch (error) {
        if (!isHostFault(error)) throw error;
        failures += 1;
        // A lasting fault (an unreadable log) is logged at 1, 2, 4, 8… failures, not each poll.
        if ((failures & (failures - 1)) === 0) {
          log.warn({ code: error.code, reason: error.message, failures }, 'detector:poll_failed');
        }
      }
      await pause(context.clock, detector.intervalMs, context.signal);
    }
  } finally {
    await detector.close();
  }
}

/** Runs detectors side by side; rejects with the first that fails for good. */
export async function runDetectors(
  detectors: readonly Detector[],
  context: DetectorContext,
): Promise<void> {
  await Promise.all(detectors.map((detector) => runDetector(detector, context)));
}

/** Waits `delayMs` on the clock, or less if the signal aborts first. */
export function pause(clock: Clock, delayMs: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    let handle: TimerHandle | undefined;
    const done = (): void => {
      if (handle) clock.clearTimeout(handle);
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    handle = clock.setTimeout(done, delayMs);
  });
}

/** An error the operating system raised about a file or socket, worth retrying. */
function isHostFault(error: unknown): error is NodeJS.ErrnoException & { code: string } {
  const candidate = error as NodeJS.ErrnoException | undefined;
  return typeof candidate?.code === 'string' && typeof candidate.syscall === 'string';
}
