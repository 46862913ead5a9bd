/**
 * `citadel-archer admin …`: the admin API from a shell. Every command prints
 * the server's JSON answer on stdout. An API error prints
 * `error <code>: <message>` on stderr and exits 1; a usage mistake exits 2;
 * a server that cannot be reached (or trusted) exits 3.
 */
import { type Command, Option } from 'commander';
import { maxPageLimit } from '../http/paging.ts';
import { AdminApi, segment } from './client/admin-api.ts';
import {
  addConnectionOptions,
  type ConnectionOptions,
  exitTwoOnUsageError,
  integerBetween,
  readAdminToken,
  reportFailure,
  resolveConnection,
} from './client/options.ts';

interface AdminGlobals extends ConnectionOptions {
  readonly tokenFile?: string;
}

type Action = (api: AdminApi) => Promise<unknown>;

/** Registers the `admin` command group on the program. */
export function registerAdmin(program: Command): void {
  const admin = program
    .command('admin')
    .description('Query and change the daemon through its admin API')
    .option(
      '--token-file <file>',
      'admin token file (else $CITADEL_ADMIN_TOKEN, else the bootstrap file)',
    )
    .configureHelp({ showGlobalOptions: true });
  addConnectionOptions(admin);
  exitTwoOnUsageError(admin);

  registerAgentCommands(admin);
  registerThreatCommands(admin);
  registerAuditCommand(admin);
  registerEnrollmentSecretCommands(admin);
  registerTokenCommands(admin);
}

function registerAgentCommands(admin: Command): void {
  admin
    .command('agents')
    .description('List agents')
    .addOption(new Option('--status <status>').choices(['active', 'inactive', 'offline']))
    .action((options: { status?: string }, command: Command) =>
      perform(command, (api) => api.get('/api/v1/agents', { status: options.status })),
    );
  admin
    .command('agent <id>')
    .description('Show one agent')
    .action((id: string, _options: unknown, command: Command) =>
      perform(command, (api) => api.get(`/api/v1/agents/${segment(id)}`)),
    );
  admin
    .command('revoke-agent <id>')
    .description("Revoke an agent's tokens and close its session")
    .action((id: string, _options: unknown, command: Command) =>
      perform(command, (api) => api.post(`/api/v1/agents/${segment(id)}/revoke`)),
    );
}

function registerThreatCommands(admin: Command): void {
  admin
    .command('threats')
    .description('List threats, newest first')
    .addOption(new Option('--status <status>').choices(['open', 'acknowledged', 'resolved']))
    .option('--agent-id <id>', 'only this agent')
    .option('--min-severity <n>', 'only this severity or above (1-10)', integerBetween(1, 10))
    .option('--after <cursor>', 'the page after this cursor')
    .option('--limit <n>', `page size (1-${maxPageLimit})`, integerBetween(1, maxPageLimit))
    .action((options: ListThreatsOptions, command: Command) =>
      perform(command, (api) =>
        api.get('/api/v1/threats', {
          status: options.status,
          agent_id: options.agentId,
          min_severity: options.minSeverity,
          after: options.after,
          limit: options.limit,
        }),
      ),
    );
  admin
    .command('threat <id>')
    .description('Show one threat')
    .action((id: string, _options: unknown, command: Command) =>
      perform(command, (api) => api.get(`/api/v1/threats/${segment(id)}`)),
    );
  admin
    .command('ack <id>')
    .description('Acknowledge an open threat')
    .option('--note <text>', 'a note for the record')
    .action((id: string, options: { note?: string }, command: Command) =>
      perform(command, (api) =>
        api.patch(`/api/v1/threats/${segment(id)}`, withNote({ status: 'acknowledged' }, options)),
      ),
    );
  admin
    .command('resolve <id>')
    .description('Resolve a threat')
    .addOption(
      new Option('--resolution <kind>', 'how it ended')
        .choices(['true_positive', 'false_positive', 'duplicate'])
        .makeOptionMandatory(),
    )
    .option('--note <text>', 'a note for the record')
    .action((id: string, options: { resolution: string; note?: string }, command: Command) =>
      perform(command, (api) =>
        api.patch(
          `/api/v1/threats/${segment(id)}`,
          withNote({ status: 'resolved', resolution: options.resolution }, options),
        ),
      ),
    );
}

interface ListThreatsOptions {
  readonly status?: string;
  readonly agentId?: string;
  readonly minSeverity?: number;
  readonly after?: string;
  readonly limit?: number;
}

function registerAuditCommand(admin: Command): void {
  admin
    .command('audit')
    .description('List audit events')
    .option('--event-type <type>', 'only this event type')
    .option('--agent-id <id>', 'only this agent')
    .option('--after <cursor>', 'the page after this cursor')
    .option('--limit <n>', `page size (1-${maxPageLimit})`, integerBetween(1, maxPageLimit))
    .action((options: AuditOptions, command: Command) =>
      perform(command, (api) =>
        api.get('/api/v1/audit', {
          event_type: options.eventType,
          agent_id: options.agentId,
          after: options.after,
          limit: options.limit,
        }),
      ),
    );
}

interface AuditOptions {
  readonly eventType?: string;
  readonly agentId?: string;
  readonly after?: string;
  readonly limit?: number;
}

function registerEnrollmentSecretCommands(admin: Command): void {
  const secrets = admin.command('enrollment-secret').description('Manage enrollment secrets');
  secrets
    .command('create')
    .description('Create an enrollment secret (shown once)')
    .option('--max-uses <n>', 'how many enrollments it allows', integerBetween(1, 1_000_000))
    .option('--expires-in-s <seconds>', 'lifetime in seconds', integerBetween(1, 10 * 365 * 86_400))
    .action((options: { maxUses?: number; expiresInS?: number }, command: Command) => {
      const body: Record<string, number> = {};
      if (options.maxUses !== undefined) body['max_uses'] = options.maxUses;
      if (options.expiresInS !== undefined) body['expires_in_s'] = options.expiresInS;
      return perform(command, (api) => api.post('/api/v1/enrollment-secrets', body));
    });
  secrets
    .command('revoke <id>')
    .description('Revoke an enrollment secret')
    .action((id: string, _options: unknown, command: Command) =>
      perform(command, (api) => api.post(`/api/v1/enrollment-secrets/${segment(id)}/revoke`)),
    );
}

function registerTokenCommands(admin: Command): void {
  const tokens = admin.command('token').description('Manage admin tokens');
  tokens
    .command('create')
    .description('Create an admin token (shown once)')
    .requiredOption('--name <name>', 'who or what the token is for')
    .addOption(
      new Option('--role <role>', 'what it may do')
        .choices(['viewer', 'responder', 'admin'])
        .makeOptionMandatory(),
    )
    .action((options: { name: string; role: string }, command: Command) =>
      perform(command, (api) =>
        api.post('/api/v1/admin-tokens', { name: options.name, role: options.role }),
      ),
    );
  tokens
    .command('revoke <id>')
    .description('Revoke an admin token')
    .action((id: string, _options: unknown, command: Command) =>
      perform(command, (api) => api.post(`/api/v1/admin-tokens/${segment(id)}/revoke`)),
    );
}

function withNote<T extends object>(body: T, options: { note?: string }): T & { note?: string } {
  return options.note === undefined ? body : { ...body, note: options.note };
}

/** Runs one API call and prints its answer, or the failure and an exit status. */
async function perform(command: Command, action: Action): Promise<void> {
  try {
    const globals = command.optsWithGlobals<AdminGlobals>();
    const connection = await resolveConnection(globals);
    const token = await readAdminToken(globals.tokenFile);
    const body = await action(new AdminApi(connection, token));
    process.stdout.write(JSON.stringify(body, null, 2) + '\n');
  } catch (error) {
    process.exitCode = reportFailure(error);
  }
}
