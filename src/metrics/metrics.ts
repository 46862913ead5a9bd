/**
 * The daemon's Prometheus metrics (prom-client), on `GET /metrics` for admin
 * tokens, or on a plain listener of their own (`CITADEL_METRICS_LISTEN`) for
 * a scraper on a private network. Gauges that mirror state (sessions, queue
 * depths, agents by status) are read when scraped; events are counted where
 * they happen, through the small observer interfaces the core exposes.
 */
import { X509Certificate } from 'node:crypto';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type DatabasePool, sql } from 'slonik';
import { z } from 'zod';

/** What the metrics read at scrape time. */
export interface MetricSources {
  readonly pool: DatabasePool;
  readonly sessions: () => number;
  readonly feedSubscribers: () => number;
  readonly writeQueue: () => { threats: number; audit: number; liveness: number };
  readonly bcryptQueue: () => number;
  readonly refusals: () => ReadonlyMap<string, number>;
  readonly certificatePem: () => string;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly messages: Counter<'type'>;
  readonly batchSize: Histogram;
  readonly commitSeconds: Histogram;
  readonly databaseErrors: Counter;
  readonly bcryptWaitSeconds: Histogram;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'citadel_' });
    this.messages = new Counter({
      name: 'citadel_agent_messages_total',
      help: 'Messages received on agent sockets, by type (invalid ones as "invalid").',
      labelNames: ['type'],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'citadel_write_batch_threats',
      help: 'Threats per committed write-behind transaction.',
      buckets: [1, 5, 10, 50, 100, 250, 500, 1_000],
      registers,
    });
    this.commitSeconds = new Histogram({
      name: 'citadel_write_commit_seconds',
      help: 'Time to commit one write-behind transaction.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.databaseErrors = new Counter({
      name: 'citadel_database_errors_total',
      help: 'Write-behind transactions that failed and were retried.',
      registers,
    });
    this.bcryptWaitSeconds = new Histogram({
      name: 'citadel_bcrypt_wait_seconds',
      help: 'Time a credential check waited in the bcrypt admission queue.',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.#gauges(sources);
  }

  #gauges(sources: MetricSources): void {
    const registers = [this.registry];
    new Gauge({
      name: 'citadel_agent_sessions',
      help: 'Agent sessions open on this daemon.',
      registers,
      collect() {
        this.set(sources.sessions());
      },
    });
    new Gauge({
      name: 'citadel_feed_subscribers',
      help: 'Live feed subscribers on this daemon.',
      registers,
      collect() {
        this.set(sources.feedSubscribers());
      },
    });
    new Gauge({
      name: 'citadel_write_queue_depth',
      help: 'Items waiting in the write-behind queue, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const [kind, depth] of Object.entries(sources.writeQueue())) this.set({ kind }, depth);
      },
    });
    new Gauge({
      name: 'citadel_bcrypt_queue_depth',
      help: 'Credential checks waiting for a bcrypt slot.',
      registers,
      collect() {
        this.set(sources.bcryptQueue());
      },
    });
    new Gauge({
      name: 'citadel_budget_refusals',
      help: 'Requests refused for being over a budget since start, by budget.',
      labelNames: ['budget'],
      registers,
      collect() {
        for (const [budget, count] of sources.refusals()) this.set({ budget }, count);
      },
    });
    new Gauge({
      name: 'citadel_tls_certificate_expiry_timestamp_seconds',
      help: 'When the certificate in use expires (Unix time).',
      registers,
      collect() {
        const validTo = new X509Certificate(sources.certificatePem()).validToDate;
        this.set(Math.floor(validTo.getTime() / 1_000));
      },
    });
    new Gauge({
      name: 'citadel_agents',
      help: 'Enrolled agents by status, as the database has them.',
      labelNames: ['status'],
      registers,
      async collect() {
        const rows = await sources.pool
          .any(sql.type(z.object({ status: z.string(), n: z.number() }))`
            SELECT status, count(*)::int AS n FROM agents GROUP BY status`)
          .catch(() => []);
        this.reset();
        for (const status of ['active', 'inactive', 'offline']) {
          this.set({ status }, rows.find((r) => r.status === status)?.n ?? 0);
        }
      },
    });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
