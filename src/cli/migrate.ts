/**
 * `citadel-archer migrate`: applies `sql/` migrations to the configured database.
 * On the embedded database it claims the data directory first, as `serve`
 * does, so that it cannot take the database over from a running daemon.
 */
import { mkdirSync } from 'node:fs';
import type { Command } from 'commander';
import { claimDataDir, type DataDirClaim } from '../daemon/data-dir-lock.ts';
import { migrate } from '../database/migrate.ts';
import { type OpenDatabase, openDatabase } from '../database/open.ts';
import { createLogger } from '../log/logger.ts';
import { configOrExit, operatorRefusal, withConfigOption } from './config-option.ts';

export function registerMigrate(program: Command): void {
  const command = program
    .command('migrate')
    .description('apply the database migrations, then exit');
  withConfigOption(command).action(async (options: { config?: string }) => {
    const config = configOrExit(options);
    const log = createLogger({ level: config.logLevel });
    let claim: DataDirClaim | undefined;
    let database: OpenDatabase | undefined;
    try {
      if (config.database.kind === 'embedded') {
        mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
        claim = await claimDataDir({ dataDir: config.dataDir, command: 'migrate', log });
      }
      database = await openDatabase(config, log);
      const applied = await migrate(database.connectionUri, log);
      log.info({ applied }, applied.length > 0 ? 'migrate:done' : 'migrate:up-to-date');
    } catch (error) {
      const refusal = operatorRefusal(error);
      if (refusal) {
        process.stderr.write(`${refusal}\n`);
        process.exitCode = 2;
      } else {
        log.fatal({ err: error }, 'migrate:failed');
        process.exitCode = 1;
      }
    } finally {
      await database?.close();
      claim?.release();
    }
  });
}
