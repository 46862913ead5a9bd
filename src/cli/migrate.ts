/** `citadel-archer migrate`: applies `sql/` migrations to the configured database. */
import type { Command } from 'commander';
import { loadConfig } from '../config/config.ts';
import { EmbeddedDatabase } from '../database/embedded.ts';
import { migrate } from '../database/migrate.ts';
import { createLogger } from '../log/logger.ts';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply the database migrations, then exit')
    .option('--config <file>', 'a JSON config file (environment variables override it)')
    .action(async (options: { config?: string }) => {
      let config: ReturnType<typeof loadConfig>;
      try {
        config = loadConfig(options.config ? { configFile: options.config } : {});
      } catch (error) {
        process.stderr.write(`citadel-archer: ${(error as Error).message}\n`);
        process.exit(2);
      }
      const log = createLogger({ level: config.logLevel });
      let embedded: EmbeddedDatabase | undefined;
      try {
        let uri: string;
        if (config.database.kind === 'embedded') {
          embedded = new EmbeddedDatabase({
            dataDir: config.dataDir,
            runAsUser: config.database.runAsUser,
            log,
          });
          await embedded.start();
          uri = embedded.connectionUri;
        } else {
          uri = config.database.connectionUri;
        }
        const applied = await migrate(uri, log);
        log.info({ applied }, applied.length > 0 ? 'migrate:done' : 'migrate:up-to-date');
      } catch (error) {
        log.fatal({ err: error }, 'migrate:failed');
        process.exitCode = 1;
      } finally {
        await embedded?.stop();
      }
    });
}
