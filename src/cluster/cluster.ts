/**
 * Several daemons on one database, assembled: this daemon's identity and
 * lease, its LISTEN connection, the feed relay and the session claims. It
 * is started before the daemon accepts sockets and stopped after the last
 * write is flushed, just before the pool ends.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { DatabasePool } from 'slonik';
import type { Clock } from '../clock/clock.ts';
import { createDatabasePool } from '../database/pool.ts';
import type { FeedHub } from '../feed/feed-hub.ts';
import type { Logger } from '../log/logger.ts';
import type { SessionRegistry } from '../sessions/registry.ts';
import {
  channels,
  cursorPayload,
  parsePayload,
  probeChannel,
  revocationPayload,
  sessionPayload,
} from './channels.ts';
import { FeedRelay } from './feed-relay.ts';
import { InstanceLease, type InstanceLeaseOptions, type LeaseTimings } from './instance-lease.ts';
import { ListenConnection, type ListenTimings } from './listen-connection.ts';
import { SessionClaims } from './session-claims.ts';

export interface ClusterOptions {
  readonly pool: DatabasePool;
  /** For the dedicated LISTEN connection and the lease's own connection. */
  readonly connectionUri: string;
  /** Stable across restarts of this daemon, distinct between daemons. */
  readonly node: string;
  readonly registry: SessionRegistry;
  readonly hub: FeedHub;
  readonly clock: Clock;
  readonly log: Logger;
  readonly lease: LeaseTimings;
  readonly listen?: Partial<ListenTimings>;
  /** Closes every agent session here (the lease was lost). */
  closeAgentSessions(): void;
}

/** The node name of a daemon: host, data directory and listen address. */
export function nodeName(dataDir: string, listen: { host: string; port: number }): string {
  return `${os.hostname()}|${dataDir}|${listen.host}:${listen.port}`;
}

export class Cluster {
  readonly daemonId = randomUUID();
  readonly relay: FeedRelay;
  readonly claims: SessionClaims;
  #lease: InstanceLease | undefined;
  readonly #listen: ListenConnection;
  readonly #log: Logger;
  readonly #connectionUri: string;
  /**
   * The lease's own connection. On the shared pool a renewal could wait
   * behind a storm's upgrade queries until the lease ran out, and the other
   * daemons would sweep a daemon that was alive and holding its agents: a
   * 100,000-agent benchmark saw 15,789 sessions dropped that way.
   */
  #leasePool: DatabasePool | undefined;
  readonly #leaseOptions: Omit<InstanceLeaseOptions, 'pool'>;

  constructor(options: ClusterOptions) {
    this.#log = options.log.child({ component: 'cluster', daemonId: this.daemonId });
    this.relay = new FeedRelay({ pool: options.pool, hub: options.hub, log: this.#log });
    this.claims = new SessionClaims({
      pool: options.pool,
      daemonId: this.daemonId,
      registry: options.registry,
      hub: options.hub,
      clock: options.clock,
      log: this.#log,
    });
    this.#connectionUri = options.connectionUri;
    this.#leaseOptions = {
      daemonId: this.daemonId,
      node: options.node,
      timings: options.lease,
      clock: options.clock,
      log: this.#log,
      onTick: () => this.claims.prune(),
      onLeaseLost: () => options.closeAgentSessions(),
    };
    this.#listen = new ListenConnection({
      connectionUri: options.connectionUri,
      channels: Object.values(channels),
      probeChannel: probeChannel(this.daemonId),
      applicationName: `citadel-archer listen ${this.daemonId}`,
      clock: options.clock,
      log: this.#log,
      ...(options.listen ? { timings: options.listen } : {}),
      onNotification: (channel, payload) => this.#onNotification(channel, payload),
      onResync: () => this.#resync(),
    });
  }

  /** Takes the lease, then listens; resolves when both hold. */
  async start(): Promise<void> {
    this.#leasePool = await createDatabasePool({
      connectionUri: this.#connectionUri,
      minPoolSize: 1,
      maxPoolSize: 1,
    });
    this.#lease = new InstanceLease({ ...this.#leaseOptions, pool: this.#leasePool });
    await this.#lease.start();
    await this.#listen.start();
  }

  async stop(): Promise<void> {
    await this.#listen.stop();
    await this.relay.idle();
    try {
      await this.#lease?.stop();
    } finally {
      await this.#leasePool?.end();
    }
  }

  async #resync(): Promise<void> {
    await this.relay.resync();
    await this.claims.resync();
  }

  #onNotification(channel: string, payload: string | undefined): void {
    if (!this.#dispatch(channel, payload)) {
      this.#log.warn({ channel, payload: payload?.slice(0, 200) }, 'cluster:notification-ignored');
    }
  }

  /** Hands a notification to its consumer; false when its payload is not understood. */
  #dispatch(channel: string, payload: string | undefined): boolean {
    if (channel === channels.threats || channel === channels.threatUpdates) {
      if (!parsePayload(cursorPayload, payload)) return false;
      this.relay.poke(channel === channels.threats ? 'threats' : 'updates');
      return true;
    }
    if (channel === channels.sessions) {
      const claim = parsePayload(sessionPayload, payload);
      if (!claim) return false;
      this.claims.onClaimed(claim);
      return true;
    }
    const revocation = parsePayload(revocationPayload, payload);
    if (channel !== channels.revocations || !revocation) return false;
    void this.claims.onRevoked(revocation);
    return true;
  }
}
