/** `citadel-archer migrate`: applies `sql/` migrations to the configured database. */
import type { Command } from 'commander';
import { migrate } from '../database/migrate.ts';
import { type OpenDatabase, openDatabase } from '../database/open.ts';
import { createLogger } from '../log/logger.ts';
import { configOrExit, withConfigOption } from './config-option.ts';

export function registerMigrate(program: Command): void {
  const command = program
    .command('migrate')
    .description('apply the database migrations, then exit');
  withConfigOption(command).action(async (options: { config?: string }) => {
    const config = configOrExit(options);
    const log = createLogger({ level: config.logLevel });
    let database: OpenDatabase | undefined;
    try {
      database = await openDatabase(config, log);
      const applied = await migrate(database.connectionUri, log);
      log.info({ applied }, applied.length > 0 ? 'migrate:done' : 'migrate:up-to-date');
    } catch (error) {
      log.fatal({ err: error }, 'migrate:failed');
      process.exitCode = 1;
    } finally {
      await database?.close();
    }
  });
}
