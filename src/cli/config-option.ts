/**
 * The `--config` option of the daemon's commands, and the exit code 2 of a
 * start-up refused for something the operator must fix.
 */
import type { Command } from 'commander';
import { type Config, loadConfig } from '../config/config.ts';
import { isCitadelError } from '../errors/catalogue.ts';

export function withConfigOption(command: Command): Command {
  return command.option(
    '--config <file>',
    'a JSON config file (environment variables override it)',
  );
}

/** The configuration, or exit code 2 with one line naming the bad key. */
export function configOrExit(options: { config?: string }): Config {
  try {
    return loadConfig(options.config ? { configFile: options.config } : {});
  } catch (error) {
    process.stderr.write(`citadel-archer: ${(error as Error).message}\n`);
    process.exit(2);
  }
}

/**
 * The one line to print, exiting with code 2, when a start-up is refused for
 * something the operator must fix (a bad setting, a data directory another
 * daemon holds); undefined for any other failure.
 */
export function operatorRefusal(error: unknown): string | undefined {
  if (!isCitadelError(error)) return undefined;
  if (error.code === 'config_invalid') return `citadel-archer: ${error.message}`;
  if (error.code === 'data_dir_in_use') return `citadel-archer: ${error.code}: ${error.message}`;
  return undefined;
}
