/**
 * The daemon, assembled: database (embedded or external), migrations, the
 * Slonik pool, the write-behind path, bootstrap credentials, the HTTPS API
 * with its agent and feed sockets, and the HTTP redirect listener. `stop()`
 * is the graceful half of a two-stage shutdown: listeners stop accepting,
 * every socket is told to reconnect later (1012, with a jittered delay), the
 * write-behind queue is flushed, the pool ended, the embedded server stopped.
 * The data directory is claimed first and given back last (data-dir-lock.ts).
 */
import { mkdirSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { type DatabasePool, sql } from 'slonik';
import { z } from 'zod';
import { createBudgetServices } from '../budgets/create.ts';
import type { RefusalLedger } from '../budgets/refusals.ts';
import { type Clock, systemClock } from '../clock/clock.ts';
import { Cluster, nodeName } from '../cluster/cluster.ts';
import { leaseTimingsFor } from '../cluster/instance-lease.ts';
import { type Config, productionProblem } from '../config/config.ts';
import { bootstrapCredentials } from '../credentials/bootstrap.ts';
import { Hasher, type HasherSettings } from '../credentials/hasher.ts';
import type { EmbeddedDatabase } from '../database/embedded.ts';
import { latestMigrationVersion, migrate } from '../database/migrate.ts';
import { openDatabase } from '../database/open.ts';
import { createDatabasePool } from '../database/pool.ts';
import { CitadelError } from '../errors/catalogue.ts';
import { FeedHub } from '../feed/feed-hub.ts';
import { feedRoute } from '../feed/feed-route.ts';
import { buildHttpApp } from '../http/app.ts';
import { arrivedOverTls } from '../http/forwarded.ts';
import { createRedirectServer } from '../http/redirect.ts';
import { answerHeaders, headerProfileOf } from '../http/security-headers.ts';
import type { Logger } from '../log/logger.ts';
import { DaemonMetrics } from '../metrics/metrics.ts';
import { createMetricsServer } from '../metrics/metrics-server.ts';
import { addressMatcher } from '../net/addresses.ts';
import { agentRoute } from '../sessions/agent-route.ts';
import { closeCodes } from '../sessions/close-codes.ts';
import { SessionRegistry } from '../sessions/registry.ts';
import {
  loadTlsMaterial,
  readTlsFiles,
  type TlsMaterial,
  tlsHardening,
} from '../tls/certificates.ts';
import { type ExpiryWatch, watchCertificateExpiry } from '../tls/expiry.ts';
import type { SocketRoute, SocketServer } from '../transport/transport.ts';
import { createWsSocketServer } from '../transport/ws-transport.ts';
import { WriteBehind, type WriteBehindSettings } from '../write-behind/write-behind.ts';
import { claimDataDir, type DataDirClaim } from './data-dir-lock.ts';

/** Reconnect hints on shutdown are spread over this window. */
export const reconnectSpreadMs = 10_000;

export interface DaemonOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly clock?: Clock;
  readonly hasher?: Partial<HasherSettings>;
  readonly writeBehind?: Partial<WriteBehindSettings>;
}

export class Daemon {
  readonly config: Config;
  readonly log: Logger;
  readonly pool: DatabasePool;
  readonly writeBehind: WriteBehind;
  readonly registry: SessionRegistry;
  /** This daemon among the others sharing the database. */
  readonly cluster: Cluster;
  readonly #embedded: EmbeddedDatabase | undefined;
  readonly #claim: DataDirClaim;
  readonly #app: FastifyInstance;
  readonly #https: HttpsServer;
  readonly #http: HttpServer | undefined;
  readonly #sockets: SocketServer;
  readonly #refusals: RefusalLedger;
  readonly #metricsServer: HttpServer | undefined;
  #tls: TlsMaterial;
  #expiry: ExpiryWatch | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(parts: {
    config: Config;
    log: Logger;
    pool: DatabasePool;
    writeBehind: WriteBehind;
    registry: SessionRegistry;
    cluster: Cluster;
    embedded: EmbeddedDatabase | undefined;
    claim: DataDirClaim;
    app: FastifyInstance;
    https: HttpsServer;
    http: HttpServer | undefined;
    sockets: SocketServer;
    refusals: RefusalLedger;
    metricsServer: HttpServer | undefined;
    tls: TlsMaterial;
  }) {
    this.config = parts.config;
    this.log = parts.log;
    this.pool = parts.pool;
    this.writeBehind = parts.writeBehind;
    this.registry = parts.registry;
    this.cluster = parts.cluster;
    this.#embedded = parts.embedded;
    this.#claim = parts.claim;
    this.#app = parts.app;
    this.#https = parts.https;
    this.#http = parts.http;
    this.#sockets = parts.sockets;
    this.#refusals = parts.refusals;
    this.#metricsServer = parts.metricsServer;
    this.#tls = parts.tls;
  }

  /** The HTTPS and HTTP ports actually bound (useful when configured as 0). */
  get ports(): { https: number; http: number | undefined } {
    const https = (this.#https.address() as AddressInfo).port;
    const http = this.#http ? (this.#http.address() as AddressInfo).port : undefined;
    return { https, http };
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const { config, log } = options;
    const clock = options.clock ?? systemClock;
    const problem = productionProblem(config);
    if (problem) throw new CitadelError('config_invalid', { message: problem });
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    // Before anything in the directory is touched: a second daemon must not
    // take over the first one's embedded database, certificate or bootstrap files.
    const claim = await claimDataDir({ dataDir: config.dataDir, command: 'serve', log });
    try {
      return await Daemon.#open(options, clock, claim);
    } catch (error) {
      claim.release();
      throw error;
    }
  }

  static async #open(options: DaemonOptions, clock: Clock, claim: DataDirClaim): Promise<Daemon> {
    const { config, log } = options;
    const tls = await loadTlsMaterial(config, log);

    const { connectionUri, embedded } = await openDatabase(config, log);

    try {
      await migrate(connectionUri, log);
      const pool = await createDatabasePool({
        connectionUri,
        minPoolSize: config.dbPoolMin,
        maxPoolSize: config.dbPoolMax,
      });
      return await Daemon.#assemble(options, clock, pool, connectionUri, embedded, claim, tls);
    } catch (error) {
      await embedded?.stop();
      throw error;
    }
  }

  static async #assemble(
    options: DaemonOptions,
    clock: Clock,
    pool: DatabasePool,
    connectionUri: string,
    embedded: EmbeddedDatabase | undefined,
    claim: DataDirClaim,
    tls: TlsMaterial,
  ): Promise<Daemon> {
    const { config, log } = options;
    let metrics: DaemonMetrics | undefined;
    let current: Daemon | undefined;
    const hasher = new Hasher({
      cost: config.bcryptCost,
      onWait: (waitedMs) => metrics?.bcryptWaitSeconds.observe(waitedMs / 1_000),
      ...options.hasher,
    });
    const feed = new FeedHub();
    const budgets = createBudgetServices(config, clock, (event) => writeBehind.appendAudit(event));
    const registry: SessionRegistry = new SessionRegistry((agentId, claim): boolean =>
      cluster.claims.isSuperseded(agentId, claim),
    );
    // Instead of marking every agent offline at start: this daemon's earlier
    // lives and dead daemons are swept; the agents of live daemons are left alone.
    const cluster: Cluster = new Cluster({
      pool,
      connectionUri,
      node: nodeName(config.dataDir, config.listen),
      registry,
      hub: feed,
      clock,
      log,
      lease: leaseTimingsFor(config.heartbeatIntervalMs),
      closeAgentSessions: () => {
        for (const session of [...registry.all()]) {
          session.close(closeCodes.restarting, reconnectHint());
        }
      },
    });
    const writeBehind = new WriteBehind({
      pool,
      clock,
      log,
      daemonId: cluster.daemonId,
      // The feed hears of it from the database, in order with other daemons' threats.
      onThreatsStored: () => cluster.relay.poke('threats'),
      settings: { maxPendingThreats: config.writeQueueMax, ...options.writeBehind },
      observer: {
        committed: (threats, elapsedMs) => {
          metrics?.batchSize.observe(threats);
          metrics?.commitSeconds.observe(elapsedMs / 1_000);
        },
        failed: () => metrics?.databaseErrors.inc(),
      },
    });
    metrics = new DaemonMetrics({
      pool,
      sessions: () => registry.size,
      feedSubscribers: () => feed.size,
      writeQueue: () => writeBehind.depth,
      bcryptQueue: () => hasher.queueDepth,
      refusals: () => budgets.refusals.totals(),
      certificatePem: () => (current ? current.#tls.cert : tls.cert),
    });
    await bootstrapCredentials(pool, hasher, config.dataDir, log);
    await cluster.start();

    const latest = latestMigrationVersion();
    const isReady = async (): Promise<boolean> => {
      try {
        const version = await pool.oneFirst(sql.type(z.object({ v: z.number() }))`
          SELECT COALESCE(max(version), 0)::int AS v FROM schema_migrations`);
        return version >= latest && writeBehind.healthy;
      } catch {
        return false;
      }
    };

    const deps = {
      config,
      pool,
      hasher,
      writeBehind,
      registry,
      feed,
      budgets,
      metrics,
      clock,
      log,
      isReady,
    };
    const { app, server } = await buildHttpApp(deps, tls);
    const headerProfile = headerProfileOf(config);
    const isTrustedProxy = addressMatcher(config.trustedProxies);
    const sockets = createWsSocketServer(log.child({ component: 'transport' }), (request) =>
      answerHeaders(headerProfile, arrivedOverTls(request, isTrustedProxy)),
    );
    const sessionDeps = {
      pool,
      hasher,
      writeBehind,
      registry,
      clock,
      log: log.child({ component: 'session' }),
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      agentTokenTtlMs: config.agentTokenTtlMs,
      budgets,
      countMessage: (type: string) => metrics?.messages.inc({ type }),
      claims: cluster.claims,
    };
    const routes = [
      agentRoute(sessionDeps),
      feedRoute({ pool, hasher, hub: feed, budgets, log: log.child({ component: 'feed' }) }),
    ] as ReadonlyArray<SocketRoute<unknown>>;
    sockets.attach(server, routes);

    await listen(server, config.listen.host, config.listen.port);
    let http: HttpServer | undefined;
    if (config.httpListen) {
      http = createRedirectServer({
        publicHost: config.publicHost,
        serveLoopback: config.environment === 'development',
        isTrustedProxy,
        headers: headerProfile,
        serve: (request, response) => app.routing(request, response),
        serveUpgrade: sockets.upgradeListener(routes),
      });
      await listen(http, config.httpListen.host, config.httpListen.port);
    }
    let metricsServer: HttpServer | undefined;
    if (config.metricsListen) {
      metricsServer = createMetricsServer(metrics);
      await listen(metricsServer, config.metricsListen.host, config.metricsListen.port);
    }
    const daemon = new Daemon({
      config,
      log,
      pool,
      writeBehind,
      registry,
      cluster,
      embedded,
      claim,
      app,
      https: server,
      http,
      sockets,
      refusals: budgets.refusals,
      metricsServer,
      tls,
    });
    current = daemon;
    daemon.#expiry = watchCertificateExpiry({ current: () => daemon.#tls, clock, log });
    log.info(
      { httpsPort: daemon.ports.https, httpPort: daemon.ports.http ?? null },
      'daemon:ready',
    );
    return daemon;
  }

  /** Reloads the certificate and key; open sessions keep theirs. */
  reloadTls(): void {
    const material = readTlsFiles(this.#tls.certFile, this.#tls.keyFile);
    this.#https.setSecureContext({ ...tlsHardening, cert: material.cert, key: material.key });
    this.#tls = material;
    this.log.info({ certFile: material.certFile }, 'tls:reloaded');
    this.#expiry?.check();
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.log.info({ sessions: this.registry.size }, 'shutdown:listeners-closing');
    this.#https.close();
    this.#http?.close();
    this.#metricsServer?.close();
    this.#sockets.stop();
    this.#expiry?.stop();
    this.writeBehind.closeIntake();
    await this.#drain('shutdown:queue-flushed', queueDrainMs);

    // Every session's last state now, so the final flush is one batch rather
    // than a trickle that lasts as long as the agents' close handshakes.
    for (const session of this.registry.all()) session.release();
    this.#sockets.closeAll(closeCodes.restarting, reconnectHint);
    this.#refusals.flush();
    this.log.info('shutdown:sockets-closed');
    await this.#drain('shutdown:final-flush', finalDrainMs);
    this.writeBehind.stop();
    await this.cluster.stop().catch((error: unknown) => {
      this.log.error({ err: error }, 'shutdown:cluster-release-failed; others sweep this daemon');
    });
    this.log.info('shutdown:cluster-released');

    await this.#app.close().catch(() => {});
    this.#https.closeAllConnections();
    this.#http?.closeAllConnections();
    await this.pool.end();
    this.log.info('shutdown:pool-ended');
    await this.#embedded?.stop();
    this.#claim.release();
    this.log.info('shutdown:done');
  }

  async #drain(step: string, timeoutMs: number): Promise<void> {
    try {
      await this.writeBehind.drain(timeoutMs);
      this.log.info(step);
    } catch (error) {
      const depth = this.writeBehind.depth;
      this.log.error({ err: error, depth }, `${step} failed; unacked threats will be resent`);
    }
  }

  /**
   * The second signal: close every socket, stop the embedded server, give
   * up on what is queued. Nothing unacked is lost: agents resend it.
   */
  async forceStop(): Promise<void> {
    this.log.warn({ depth: this.writeBehind.depth }, 'shutdown:forced');
    this.writeBehind.stop();
    this.#sockets.closeAll(closeCodes.restarting, reconnectHint);
    this.#https.closeAllConnections();
    this.#http?.closeAllConnections();
    await this.#embedded?.stop();
    this.#claim.release();
  }
}

/** Drain budget before sockets close: the whole stop fits systemd's 10 s with room. */
const queueDrainMs = 5_000;
const finalDrainMs = 2_000;

/** The close reason of a restart: a reconnect delay spread across agents with jitter. */
function reconnectHint(): string {
  const delayMs = 1_000 + Math.floor(Math.random() * reconnectSpreadMs);
  return `restarting; reconnect_after_ms=${delayMs}`;
}

function listen(server: HttpsServer | HttpServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
