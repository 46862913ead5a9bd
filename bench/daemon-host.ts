/**
 * The daemon under measurement, as a forked child: the same assembly as
 * `citadel-archer serve` (`loadConfig` from the environment, the JSON
 * logger, `Daemon.start`), plus an IPC channel through which the harness
 * reads its memory, CPU and event-loop delay and asks it to stop. It runs
 * with `--expose-gc` so that memory is read after a full collection.
 *
 * Requests: `ready` (waits for the start; the bound port), `probe`
 * `{collect}`, `resetLoopDelay`, `stop` (the graceful shutdown, then exit).
 */
import { loadConfig } from '../src/config/config.ts';
import { Daemon } from '../src/daemon/daemon.ts';
import { createLogger } from '../src/log/logger.ts';
import { serveRequests } from './ipc.ts';
import { readProbe, resetLoopDelay } from './probe.ts';

const startedMs = performance.now();
const config = loadConfig();
const log = createLogger({ level: config.logLevel, pretty: false });
const starting = Daemon.start({ config, log }).then((daemon) => {
  resetLoopDelay();
  return daemon;
});
starting.catch((error: unknown) => {
  log.fatal({ err: error }, 'daemon:start-failed');
  setTimeout(() => process.exit(1), 100);
});

serveRequests({
  async ready() {
    const daemon = await starting;
    return { httpsPort: daemon.ports.https, startMs: performance.now() - startedMs };
  },
  async probe(args: { collect?: boolean }) {
    const daemon = await starting;
    return { ...readProbe(args.collect ?? false), sessions: daemon.registry.size };
  },
  resetLoopDelay() {
    resetLoopDelay();
    return true;
  },
  async stop() {
    const daemon = await starting;
    const began = performance.now();
    await daemon.stop();
    setTimeout(() => process.exit(0), 10);
    return { stopMs: performance.now() - began };
  },
});
