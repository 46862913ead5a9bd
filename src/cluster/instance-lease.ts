/**
 * This daemon's row in `daemon_instances` and the sweep of the dead. States:
 *
 *   holding — the lease is renewed every `renewEveryMs`; on the same tick
 *             this daemon sweeps every other daemon whose lease expired:
 *             their agents go offline, their session claims are dropped.
 *   lost    — a renewal found the row gone: another daemon swept this one
 *             (the database was out of reach, or this process stalled, for a
 *             whole lease). Its claims are gone, so it may no longer speak
 *             for its agents: `onLeaseLost` closes their sessions so they
 *             reconnect and claim afresh; the row is registered again →
 *             holding.
 *   stopped — final; a graceful stop releases the row and marks the agents
 *             still claimed here offline.
 *
 * A renewal that fails (database unreachable) changes nothing: the next tick
 * tries again, and the row is only gone if someone swept it.
 */
import os from 'node:os';
import type { DatabasePool } from 'slonik';
import type { Clock, TimerHandle } from '../clock/clock.ts';
import {
  registerInstance,
  renewLease,
  sweepEarlierLives,
  sweepExpiredInstances,
  sweepSelf,
  sweepUnclaimedAgents,
} from '../database/queries/cluster.ts';
import type { Logger } from '../log/logger.ts';

export interface LeaseTimings {
  readonly leaseMs: number;
  readonly renewEveryMs: number;
}

/**
 * The lease follows the agents' heartbeat interval: twice the interval, at
 * least 10 s and at most 30 s, renewed four times a lease. A dead daemon's
 * agents are offline within lease + one renewal period, inside the contract's
 * liveness deadline of three intervals for any interval of 5 s or more.
 */
export function leaseTimingsFor(heartbeatIntervalMs: number): LeaseTimings {
  const leaseMs = Math.min(30_000, Math.max(10_000, heartbeatIntervalMs * 2));
  return Object.freeze({ leaseMs, renewEveryMs: Math.floor(leaseMs / 4) });
}

export interface InstanceLeaseOptions {
  readonly pool: DatabasePool;
  readonly daemonId: string;
  /** Host, data directory and listen address: the same across restarts of one daemon. */
  readonly node: string;
  readonly timings: LeaseTimings;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called after each tick, for housekeeping that shares the period. */
  readonly onTick?: () => void;
  onLeaseLost(): void;
}

export class InstanceLease {
  readonly #options: InstanceLeaseOptions;
  readonly #log: Logger;
  #state: 'idle' | 'holding' | 'lost' | 'stopped' = 'idle';
  #timer: TimerHandle | undefined;
  #ticking: Promise<void> | undefined;

  constructor(options: InstanceLeaseOptions) {
    this.#options = options;
    this.#log = options.log.child({ part: 'lease' });
  }

  /**
   * Registers this daemon, then sweeps its own earlier lives at once (a
   * restart must not wait a lease to clear what it left), every expired
   * daemon, and agents that no daemon claims.
   */
  async start(): Promise<void> {
    const { pool, daemonId, node } = this.#options;
    await this.#register();
    const earlier = await sweepEarlierLives(pool, daemonId, node);
    const expired = await sweepExpiredInstances(pool, daemonId);
    const unclaimed = await sweepUnclaimedAgents(pool);
    this.#log.info(
      {
        node,
        earlierLives: earlier.daemons,
        expiredDaemons: expired.daemons,
        agentsOffline: earlier.agents + expired.agents + unclaimed,
      },
      'cluster:lease-taken',
    );
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#state = 'stopped';
    if (this.#timer) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#ticking;
    const released = await sweepSelf(this.#options.pool, this.#options.daemonId);
    this.#log.info({ agentsOffline: released.agents }, 'cluster:lease-released');
  }

  async #register(): Promise<void> {
    const { pool, daemonId, node, timings } = this.#options;
    await registerInstance(pool, {
      id: daemonId,
      node,
      hostname: os.hostname(),
      pid: process.pid,
      leaseMs: timings.leaseMs,
    });
    this.#state = 'holding';
  }

  #schedule(): void {
    if (this.#state === 'stopped') return;
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = undefined;
        this.#schedule();
      });
    }, this.#options.timings.renewEveryMs);
  }

  async #tick(): Promise<void> {
    const { pool, daemonId, timings } = this.#options;
    try {
      if (!(await renewLease(pool, daemonId, timings.leaseMs))) {
        this.#state = 'lost';
        this.#log.error(
          'cluster:lease-lost, another daemon swept this one; sessions will reconnect',
        );
        this.#options.onLeaseLost();
        await this.#register();
      }
      const swept = await sweepExpiredInstances(pool, daemonId);
      if (swept.daemons > 0) {
        this.#log.warn(
          { daemons: swept.daemons, agentsOffline: swept.agents },
          'cluster:swept, daemons whose lease expired',
        );
      }
    } catch (error) {
      this.#log.error({ err: error }, 'cluster:lease-renewal-failed, will retry');
    }
    this.#options.onTick?.();
  }
}
