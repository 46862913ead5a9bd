/**
 * The database a command works on: the external server the configuration
 * names, or the embedded one, started in the data directory. `close()` stops
 * the embedded server (and does nothing for an external one).
 */
import type { Config } from '../config/config.ts';
import type { Logger } from '../log/logger.ts';
import { EmbeddedDatabase } from './embedded.ts';

export interface OpenDatabase {
  readonly connectionUri: string;
  readonly embedded: EmbeddedDatabase | undefined;
  close(): Promise<void>;
}

export async function openDatabase(config: Config, log: Logger): Promise<OpenDatabase> {
  if (config.database.kind === 'external') {
    return {
      connectionUri: config.database.connectionUri,
      embedded: undefined,
      close: async () => {},
    };
  }
  const embedded = new EmbeddedDatabase({
    dataDir: config.dataDir,
    runAsUser: config.database.runAsUser,
    log,
  });
  await embedded.start();
  return { connectionUri: embedded.connectionUri, embedded, close: () => embedded.stop() };
}
