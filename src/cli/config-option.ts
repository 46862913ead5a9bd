/** The `--config` option of the daemon's commands, and the exit on a bad configuration. */
import type { Command } from 'commander';
import { type Config, loadConfig } from '../config/config.ts';

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
