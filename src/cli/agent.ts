/**
 * `citadel-archer agent`: runs the reference agent in the foreground. It
 * logs JSON lines to stderr, reads reports as JSON lines from stdin (or
 * `--report-file`), runs the host detectors asked for (`--watch-file`,
 * `--integrity`, `--listeners`), and stops cleanly on SIGINT or SIGTERM (a
 * second signal forces the exit). Exit statuses: 0 stopped, 1 failed, 2
 * usage, 3 the server's certificate was refused.
 */
import type { Command } from 'commander';
import { ReferenceAgent } from '../agent/agent.ts';
import { createDetectors } from '../agent/detectors/create-detectors.ts';
import { type Detector, type DetectorContext, runDetectors } from '../agent/detectors/detector.ts';
import { readEnrollmentSecretFile } from '../agent/enroll.ts';
import { exitStatus, isClientError } from '../agent/errors.ts';
import { systemHostname, systemMachineId } from '../agent/host-identity.ts';
import { followReportFile, readReportStream } from '../agent/report-intake.ts';
import { systemClock } from '../clock/clock.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import {
  addConnectionOptions,
  type ConnectionOptions,
  exitTwoOnUsageError,
  reportFailure,
  resolveConnection,
} from './client/options.ts';

interface AgentOptions extends ConnectionOptions {
  readonly enrollSecretFile?: string;
  readonly hostname?: string;
  readonly machineId?: string;
  readonly stateDir: string;
  readonly reportFile?: string;
  readonly watchFile?: string[];
  readonly rules?: string;
  readonly integrity?: string[];
  readonly listeners?: boolean;
  readonly logLevel: string;
}

/** The detectors and what they run with, built before the agent runs. */
interface DetectorRun {
  readonly detectors: readonly Detector[];
  readonly context: DetectorContext;
  readonly abort: AbortController;
}

/** How long a graceful stop may take before the process exits anyway. */
const stopDeadlineMs = 10_000;

/** Registers the `agent` command on the program. */
export function registerAgent(program: Command): void {
  const command = program
    .command('agent')
    .description(
      'Run the reference agent: enroll, hold the session, report threats from stdin and detectors',
    )
    .option('--enroll-secret-file <file>', 'file holding the enrollment secret')
    .option('--hostname <name>', 'host name to enroll with (default: this host)')
    .option('--machine-id <id>', 'machine id to enroll with (default: /etc/machine-id)')
    .option('--state-dir <dir>', 'where the identity and the outbox live', './agent-state')
    .option('--report-file <file>', 'follow this file of JSON lines instead of reading stdin')
    .option(
      '--watch-file <path>',
      'follow this log and report lines matching the rules (repeatable)',
      collect,
    )
    .option('--rules <file>', 'log rules for --watch-file (default: config/agent-rules.json)')
    .option('--integrity <paths...>', 'report changes, removal, permission changes of files')
    .option('--listeners', 'report new listening TCP and UDP ports')
    .option('--log-level <level>', 'pino log level', process.env['LOG_LEVEL'] || 'info');
  addConnectionOptions(command);
  exitTwoOnUsageError(command);
  command.action(async (options: AgentOptions) => {
    process.exitCode = await runAgentCommand(options);
    process.exit();
  });
}

async function runAgentCommand(options: AgentOptions): Promise<number> {
  const logger = createLogger({
    level: options.logLevel,
    destination: process.stderr,
    pretty: false,
  }).child({ component: 'agent' });

  let agent: ReferenceAgent;
  let detectorRun: DetectorRun;
  try {
    const connection = await resolveConnection(options);
    const machineId = options.machineId ?? (await systemMachineId());
    agent = new ReferenceAgent({
      server: connection.server,
      trust: connection.trust,
      stateDirectory: options.stateDir,
      hostname: options.hostname ?? systemHostname(),
      ...(machineId === undefined ? {} : { machineId }),
      readEnrollmentSecret: () => readEnrollmentSecretFile(options.enrollSecretFile),
      logger,
      clock: systemClock,
    });
    await agent.start();
    detectorRun = await prepareDetectors(agent, options, logger);
  } catch (error) {
    return fail(error, logger);
  }
  return superviseRun(agent, options, logger, detectorRun);
}

/** Builds the detectors the options ask for; a bad rule file stops the start here. */
async function prepareDetectors(
  agent: ReferenceAgent,
  options: AgentOptions,
  logger: Logger,
): Promise<DetectorRun> {
  const abort = new AbortController();
  const context: DetectorContext = {
    submit: (report) => agent.submit(report),
    logger: logger.child({ stage: 'detectors' }),
    clock: systemClock,
    stateDirectory: options.stateDir,
    signal: abort.signal,
  };
  const detectors = await createDetectors(
    {
      watchFiles: options.watchFile ?? [],
      ...(options.rules === undefined ? {} : { rulesFile: options.rules }),
      integrityPaths: options.integrity ?? [],
      listeners: options.listeners === true,
    },
    context,
  );
  return { detectors, context, abort };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Runs the agent and its report intake until a signal or a fatal error. */
async function superviseRun(
  agent: ReferenceAgent,
  options: AgentOptions,
  logger: Logger,
  detectorRun: DetectorRun,
): Promise<number> {
  const intakeAbort = detectorRun.abort;
  // systemClock timers do not hold the process open; while the agent waits
  // between sessions nothing else may, so hold it here until run() settles.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const stopOnSignal = watchSignals(agent, intakeAbort, logger);

  const intakeSettings = {
    submit: (report: Parameters<ReferenceAgent['submit']>[0]) => agent.submit(report),
    logger: logger.child({ stage: 'intake' }),
    signal: intakeAbort.signal,
  };
  const intake = options.reportFile
    ? followReportFile(options.reportFile, { ...intakeSettings, stateDirectory: options.stateDir })
    : readReportStream(process.stdin, intakeSettings);
  let intakeFailure: unknown;
  intake.then(
    () => logger.info('intake:ended'),
    (error: unknown) => {
      intakeFailure = error;
      logger.error({ err: error }, 'intake:failed');
      agent.stop();
    },
  );
  runDetectors(detectorRun.detectors, detectorRun.context).catch((error: unknown) => {
    intakeFailure ??= error;
    logger.error({ err: error }, 'detectors:failed');
    agent.stop();
  });

  try {
    await agent.run();
    if (intakeFailure !== undefined) return fail(intakeFailure, logger);
    logger.info('agent:stopped');
    return exitStatus.ok;
  } catch (error) {
    return fail(error, logger);
  } finally {
    stopOnSignal();
    clearInterval(keepAlive);
    intakeAbort.abort();
    process.stdin.destroy();
  }
}

/** First SIGINT/SIGTERM stops gracefully; a second, or the deadline, forces the exit. */
function watchSignals(agent: ReferenceAgent, intake: AbortController, logger: Logger): () => void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ signal }, 'agent:forced_exit');
      process.exit(exitStatus.failed);
    }
    signalled = true;
    logger.info({ signal }, 'agent:stopping');
    intake.abort();
    agent.stop();
    setTimeout(() => {
      logger.error({ deadlineMs: stopDeadlineMs }, 'agent:stop_deadline_passed');
      process.exit(exitStatus.failed);
    }, stopDeadlineMs).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

function fail(error: unknown, logger: Logger): number {
  const fields = isClientError(error) ? { code: error.code, details: error.details } : {};
  logger.fatal({ ...fields, reason: (error as Error)?.message }, 'agent:failed');
  return reportFailure(error);
}
