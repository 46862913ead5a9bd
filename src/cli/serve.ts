/**
 * `citadel-archer serve`: runs the daemon until a signal. SIGTERM or SIGINT
 * starts the graceful shutdown; a second one forces the exit. SIGHUP reloads
 * the TLS certificate and key.
 */
import type { Command } from 'commander';
import { Daemon } from '../daemon/daemon.ts';
import { createLogger } from '../log/logger.ts';
import { createNotifier } from '../service/systemd-notify.ts';
import { configOrExit, operatorRefusal, withConfigOption } from './config-option.ts';

export function registerServe(program: Command): void {
  withConfigOption(program.command('serve').description('run the daemon')).action(
    async (options: { config?: string }) => {
      const config = configOrExit(options);
      const log = createLogger({ level: config.logLevel });
      let daemon: Daemon;
      try {
        daemon = await Daemon.start({ config, log });
      } catch (error) {
        const refusal = operatorRefusal(error);
        if (refusal) {
          process.stderr.write(`${refusal}\n`);
          process.exit(2);
        }
        log.fatal({ err: error }, 'daemon:start-failed');
        process.exit(1);
      }
      const notifier = createNotifier(log);
      const { https, http } = daemon.ports;
      notifier.ready(`serving on ${https}${http === undefined ? '' : ` and ${http}`}`);
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals += 1;
        if (signals > 1) {
          log.warn({ signal }, 'shutdown:second-signal, forcing the exit');
          void daemon.forceStop().finally(() => process.exit(0));
          return;
        }
        log.info({ signal }, 'shutdown:started');
        notifier.stopping();
        daemon.stop().then(
          () => {
            notifier.close();
            process.exit(0);
          },
          (error: unknown) => {
            log.fatal({ err: error }, 'shutdown:failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      process.on('SIGHUP', () => {
        try {
          daemon.reloadTls();
        } catch (error) {
          log.error({ err: error }, 'tls:reload-failed; the old certificate stays in use');
        }
      });
    },
  );
}
