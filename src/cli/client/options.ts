/**
 * What the `agent`, `feed` and `admin` commands share: the server and trust
 * options, where the admin token comes from, option value parsers, and the
 * exit statuses (0 done, 1 refused or failed, 2 usage, 3 server not reached
 * or not trusted).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { ClientError, exitStatus } from '../../agent/errors.ts';
import { parseServerUrl } from '../../agent/https-json.ts';
import { parsePin, resolveTrust, type Trust } from '../../agent/trust.ts';

export const defaultServer = 'https://127.0.0.1:8443';

/** The options every client command accepts about reaching the server. */
export interface ConnectionOptions {
  readonly server: string;
  readonly ca?: string;
  readonly pin?: string;
}

export interface Connection {
  readonly server: URL;
  readonly trust: Trust;
}

/** The daemon's data directory: `CITADEL_DATA_DIR`, else `./data`. */
export function dataDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env['CITADEL_DATA_DIR'] || './data';
}

/** Adds `--server`, `--ca` and `--pin` to a command. */
export function addConnectionOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--server <url>', 'the daemon, as an https:// URL').default(defaultServer),
    )
    .addOption(
      new Option('--ca <file>', 'trust this CA (PEM) instead of the system roots').conflicts('pin'),
    )
    .addOption(
      new Option(
        '--pin <sha256:hex>',
        'accept only a server certificate with this SHA-256 fingerprint',
      )
        .argParser(checkedPin)
        .conflicts('ca'),
    );
}

/** Resolves the connection options into a server URL and what to trust. */
export async function resolveConnection(options: ConnectionOptions): Promise<Connection> {
  const server = parseServerUrl(options.server);
  const trust = await resolveTrust({
    dataDirectory: dataDirectory(),
    ...(options.ca === undefined ? {} : { caFile: options.ca }),
    ...(options.pin === undefined ? {} : { pin: options.pin }),
  });
  return { server, trust };
}

/**
 * The admin token: the `--token-file` file, else `CITADEL_ADMIN_TOKEN`, else
 * the bootstrap file the daemon writes on its first start.
 */
export async function readAdminToken(
  tokenFile: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if (tokenFile === undefined && env['CITADEL_ADMIN_TOKEN']) {
    return env['CITADEL_ADMIN_TOKEN'].trim();
  }
  const path = tokenFile ?? join(dataDirectory(env), 'bootstrap', 'admin-token');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ClientError('invalid_option', {
      message:
        `no admin token: cannot read ${path} (${(error as Error).message}); ` +
        'pass --token-file FILE or set CITADEL_ADMIN_TOKEN',
      cause: error,
    });
  }
  const token = text.trim();
  if (token === '') throw new ClientError('invalid_option', { message: `${path} is empty` });
  return token;
}

/** A commander parser for an integer within bounds. */
export function integerBetween(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError('not an integer');
    const number = Number(value);
    if (number < min || number > max) {
      throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    }
    return number;
  };
}

function checkedPin(value: string): string {
  try {
    parsePin(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return value;
}

/**
 * Usage mistakes exit with 2 (commander's own default is 1), help with 0.
 * Set on a command before its subcommands are added, so they inherit it.
 */
export function exitTwoOnUsageError(command: Command): Command {
  return command.exitOverride((error) => {
    process.exit(error.exitCode === 0 ? exitStatus.ok : exitStatus.usage);
  });
}

/** Prints a client failure on stderr and answers the exit status for it. */
export function reportFailure(error: unknown, write = writeStderr): number {
  if (error instanceof ClientError) {
    const code = error.code === 'api_error' ? (error.serverCode ?? 'api_error') : error.code;
    write(`error ${code}: ${error.message}\n`);
    return error.exitStatus;
  }
  write(`error internal: ${error instanceof Error ? error.message : String(error)}\n`);
  return exitStatus.failed;
}

function writeStderr(text: string): void {
  process.stderr.write(text);
}
