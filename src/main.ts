/**
 * The `citadel-archer` command: `serve`, `migrate`, `agent`, `feed`, `admin`.
 * Each subcommand lives in its own module under `src/cli/` and registers
 * itself on the program here.
 */
import { Command } from 'commander';
import { registerAdmin } from './cli/admin.ts';
import { registerAgent } from './cli/agent.ts';
import { registerCert } from './cli/cert.ts';
import { registerFeed } from './cli/feed.ts';
import { registerMigrate } from './cli/migrate.ts';
import { registerServe } from './cli/serve.ts';

const program = new Command('citadel-archer')
  .description('Supervises a fleet of host security agents')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

registerServe(program);
registerMigrate(program);
registerAgent(program);
registerFeed(program);
registerAdmin(program);
registerCert(program);

await program.parseAsync(process.argv);
