/**
 * The simulated fleet: several load-generator processes, each on its own
 * loopback source address (127.0.0.11, .12, …) and holding at most
 * `maxAgentsPerProcess` sessions, so that none nears the 20,000-file limit.
 * Calls fan out to every generator and their answers are merged.
 */
import path from 'node:path';
import type { AgentCredential } from './bench-agent.ts';
import { ChildHandle } from './ipc.ts';
import { concat } from './stats.ts';

export const maxAgentsPerProcess = 5_000;

/** Samples merged across generators (see `Recorder`). */
export interface FleetSamples {
  readonly heartbeatMs: number[];
  readonly ackMs: number[];
  readonly feedMs: number[];
  readonly welcomesAt: number[];
  readonly acks: number;
  readonly errors: Record<string, number>;
  readonly refusals: Record<string, number>;
}

export interface FleetOptions {
  readonly port: number;
  readonly ca: string;
  readonly protocol: 'citadel' | 'bare';
  readonly agents: readonly AgentCredential[];
  /** At least this many processes, even for a small fleet. */
  readonly minProcesses?: number;
}

export class Fleet {
  readonly generators: ChildHandle[];
  readonly size: number;

  private constructor(generators: ChildHandle[], size: number) {
    this.generators = generators;
    this.size = size;
  }

  static async start(options: FleetOptions): Promise<Fleet> {
    const count = Math.max(
      options.minProcesses ?? 1,
      Math.ceil(options.agents.length / maxAgentsPerProcess),
    );
    const generators: ChildHandle[] = [];
    for (let index = 0; index < count; index += 1) {
      const share = options.agents.filter((_, i) => i % count === index);
      const child = new ChildHandle(path.join(import.meta.dirname, 'loadgen.ts'));
      generators.push(child);
      await child.call('init', {
        url: `wss://127.0.0.1:${options.port}/api/v1/agent`,
        ca: options.ca,
        localAddress: `127.0.0.${11 + index}`,
        protocol: options.protocol,
        agents: share,
      });
    }
    return new Fleet(generators, options.agents.length);
  }

  /** Connects `count` more agents (all, when absent); returns how many came online. */
  async connect(count?: number, concurrency = 64): Promise<{ connected: number; failed: number }> {
    const per = count === undefined ? undefined : Math.ceil(count / this.generators.length);
    const answers = await this.all<{ connected: number; failed: number }>('connect', {
      ...(per === undefined ? {} : { count: per }),
      concurrency,
    });
    return {
      connected: answers.reduce((sum, a) => sum + a.connected, 0),
      failed: answers.reduce((sum, a) => sum + a.failed, 0),
    };
  }

  async online(): Promise<number> {
    const answers = await this.all<{ online: number }>('status');
    return answers.reduce((sum, a) => sum + a.online, 0);
  }

  /** Takes and merges every generator's samples. */
  async take(): Promise<FleetSamples> {
    const parts = await this.all<FleetSamples>('take');
    return {
      heartbeatMs: concat(parts.map((p) => p.heartbeatMs)),
      ackMs: concat(parts.map((p) => p.ackMs)),
      feedMs: concat(parts.map((p) => p.feedMs)),
      welcomesAt: concat(parts.map((p) => p.welcomesAt)),
      acks: parts.reduce((sum, p) => sum + p.acks, 0),
      errors: mergeCounts(parts.map((p) => p.errors)),
      refusals: mergeCounts(parts.map((p) => p.refusals)),
    };
  }

  all<T>(op: string, args: unknown = {}, timeoutMs?: number): Promise<T[]> {
    return Promise.all(this.generators.map((g) => g.call<T>(op, args, timeoutMs)));
  }

  async close(): Promise<void> {
    await Promise.all(
      this.generators.map(async (g) => {
        await g.call('close', {}, 10_000).catch(() => undefined);
        await Promise.race([g.exited, new Promise((r) => setTimeout(r, 5_000))]);
        await g.kill();
      }),
    );
  }
}

function mergeCounts(parts: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) merged[key] = (merged[key] ?? 0) + value;
  }
  return merged;
}
