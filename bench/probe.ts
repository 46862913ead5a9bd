/**
 * What a measured process (the daemon host, the bare server) reports about
 * itself: memory after a full collection, CPU time consumed, and event-loop
 * delay since the last reset. Both servers use this one probe, so their
 * figures are taken the same way.
 */
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** One reading of a measured process. */
export interface ProbeReading {
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  readonly externalBytes: number;
  readonly arrayBuffersBytes: number;
  /** User plus system CPU time since the process started, in microseconds. */
  readonly cpuMicros: number;
  readonly loopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly openFiles: number;
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

/** Resets the event-loop delay histogram. */
export function resetLoopDelay(): void {
  loopDelay.reset();
}

/** Reads the process; collects garbage first when `--expose-gc` is on and `collect` asked. */
export function readProbe(collect: boolean): ProbeReading {
  if (collect && typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
  }
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    arrayBuffersBytes: memory.arrayBuffers,
    cpuMicros: cpu.user + cpu.system,
    loopDelayMs: {
      p50: loopDelay.percentile(50) / 1e6,
      p99: loopDelay.percentile(99) / 1e6,
      max: loopDelay.max / 1e6,
    },
    openFiles: countOpenFiles(),
  };
}

/** Descriptors open in this process: what the 20,000-file limit counts. */
function countOpenFiles(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}
