/**
 * `citadel-archer feed`: prints the live threat feed on stdout, one JSON
 * line per `threat` or `threat_updated`, and resumes after its last cursor
 * whenever the connection is lost. Logs go to stderr. Exit statuses: 0 on
 * SIGINT/SIGTERM, 1 when the token is refused, 2 usage, 3 the server's
 * certificate was refused.
 */
import type { Command } from 'commander';
import { exitStatus } from '../agent/errors.ts';
import { createLogger } from '../log/logger.ts';
import { FeedClient } from './client/feed-client.ts';
import {
  addConnectionOptions,
  type ConnectionOptions,
  exitTwoOnUsageError,
  integerBetween,
  readAdminToken,
  reportFailure,
  resolveConnection,
} from './client/options.ts';

interface FeedOptions extends ConnectionOptions {
  readonly tokenFile?: string;
  readonly minSeverity?: number;
  readonly agentId?: string;
  readonly since?: string;
  readonly logLevel: string;
}

/** Registers the `feed` command on the program. */
export function registerFeed(program: Command): void {
  const command = program
    .command('feed')
    .description('Print the live threat feed as JSON lines')
    .option(
      '--token-file <file>',
      'admin token file (else $CITADEL_ADMIN_TOKEN, else the bootstrap file)',
    )
    .option(
      '--min-severity <n>',
      'only threats of this severity or above (1-10)',
      integerBetween(1, 10),
    )
    .option('--agent-id <id>', 'only threats of this agent')
    .option('--since <cursor>', 'replay stored threats after this cursor first')
    .option('--log-level <level>', 'pino log level for stderr', process.env['LOG_LEVEL'] || 'warn');
  addConnectionOptions(command);
  exitTwoOnUsageError(command);
  command.action(async (options: FeedOptions) => {
    process.exitCode = await runFeed(options);
  });
}

async function runFeed(options: FeedOptions): Promise<number> {
  const logger = createLogger({
    level: options.logLevel,
    destination: process.stderr,
    pretty: false,
  }).child({ component: 'feed' });

  let client: FeedClient;
  try {
    const connection = await resolveConnection(options);
    const token = await readAdminToken(options.tokenFile);
    client = new FeedClient({
      connection,
      token,
      filter: {
        ...(options.minSeverity === undefined ? {} : { minSeverity: options.minSeverity }),
        ...(options.agentId === undefined ? {} : { agentId: options.agentId }),
      },
      ...(options.since === undefined ? {} : { since: options.since }),
      output: process.stdout,
      logger,
    });
  } catch (error) {
    return reportFailure(error);
  }

  const onSignal = (): void => client.stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A reader that went away (`feed | head`) ends the feed quietly.
  process.stdout.on('error', onSignal);
  try {
    await client.run();
    return exitStatus.ok;
  } catch (error) {
    return reportFailure(error);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
