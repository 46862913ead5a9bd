/**
 * The write-behind path: threats, agent liveness, budget state and audit
 * events are queued in memory and reach PostgreSQL in batches, each one SQL
 * statement (`database/queries/write-batch.ts`), flushed by size (`maxBatch`
 * threats) or by time: `flushDelayMs` after a threat, `auxFlushDelayMs` when
 * only liveness, budget state and audit rows wait, since nothing waits on
 * those for an ack.
 *
 * - A threat's promise settles only after the statement holding it has
 *   committed: the agent's ack waits for it. It settles with false for a
 *   report already stored (acked again, stored once).
 * - Liveness is coalesced per agent: only the latest status and heartbeat time
 *   of each agent is written, one row update per agent per flush.
 * - Flushes run one at a time, in order. When the database fails, the batch
 *   goes back to the front of the queue and is retried with capped backoff;
 *   nothing is dropped. When `maxPendingThreats` are waiting, new threats are
 *   refused with `storage_unavailable` and a retry delay.
 * - A batch refused for its data (an integrity or data exception) is
 *   narrowed down: the threats it held are retried in batches of half the
 *   size, halving again on each refusal until the bad report fails alone,
 *   and doubling again on each commit. One bad report among a thousand costs
 *   about twenty statements, not a thousand. Alone, a report refused for its
 *   data (SQLSTATE class 22) is answered `invalid_message`, so that its agent
 *   drops it; anything else refused alone is `internal_error`.
 */
import type { DatabasePool } from 'slonik';
import type { BudgetSnapshot } from '../budgets/agent-budgets.ts';
import type { Clock, TimerHandle } from '../clock/clock.ts';
import type { ThreatReport } from '../database/queries/threats.ts';
import { writeBatch } from '../database/queries/write-batch.ts';
import type { AgentStatus, AuditEvent } from '../database/rows.ts';
import { CitadelError } from '../errors/catalogue.ts';
import type { Logger } from '../log/logger.ts';

export interface WriteBehindSettings {
  readonly maxBatch: number;
  readonly flushDelayMs: number;
  /** The delay when only liveness, budget state and audit rows wait: they need no ack. */
  readonly auxFlushDelayMs: number;
  readonly maxPendingThreats: number;
  readonly maxPendingAudit: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
}

export const defaultWriteBehindSettings: WriteBehindSettings = Object.freeze({
  maxBatch: 1_000,
  flushDelayMs: 5,
  auxFlushDelayMs: 250,
  maxPendingThreats: 20_000,
  maxPendingAudit: 50_000,
  retryBaseMs: 100,
  retryMaxMs: 5_000,
});

interface PendingThreat {
  readonly report: ThreatReport;
  readonly resolve: (storedNow: boolean) => void;
  readonly reject: (error: unknown) => void;
}

interface Liveness {
  status: AgentStatus;
  lastHeartbeat: string | null;
}

export interface WriteBehindOptions {
  readonly pool: DatabasePool;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called after commit with how many threats that transaction stored. */
  readonly onThreatsStored: (count: number) => void;
  /** This daemon: liveness and budgets are written only for agents whose session it holds. */
  readonly daemonId: string;
  readonly settings?: Partial<WriteBehindSettings>;
  /** Told of each commit and each failed flush (for metrics). */
  readonly observer?: {
    committed(threats: number, elapsedMs: number): void;
    failed(): void;
  };
}

export class WriteBehind {
  readonly #pool: DatabasePool;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onThreatsStored: (count: number) => void;
  readonly #settings: WriteBehindSettings;
  readonly #daemonId: string;
  readonly #observer: WriteBehindOptions['observer'];
  #threats: PendingThreat[] = [];
  #audit: AuditEvent[] = [];
  #liveness = new Map<string, Liveness>();
  #budgets = new Map<string, BudgetSnapshot>();
  #timer: TimerHandle | undefined;
  #timerDueAt = 0;
  /** Threats taken by the flush under way. */
  #inFlight = 0;
  #flushing: Promise<void> | undefined;
  #failures = 0;
  /**
   * While a refused batch is narrowed down: how many threats the next batch
   * may take, and how many of the refused batch's threats are still to go.
   */
  #narrowing: { size: number; remaining: number } | undefined;
  #committedBatches = 0;
  /** Recent commit rate, threats a second (an estimate, for back-pressure delays). */
  #throughput = 1_000;
  #stopped = false;
  #intakeClosed = false;

  constructor(options: WriteBehindOptions) {
    this.#pool = options.pool;
    this.#clock = options.clock;
    this.#log = options.log.child({ component: 'write-behind' });
    this.#onThreatsStored = options.onThreatsStored;
    this.#settings = { ...defaultWriteBehindSettings, ...options.settings };
    this.#daemonId = options.daemonId;
    this.#observer = options.observer;
  }

  /** Whether the last flush reached the database. */
  get healthy(): boolean {
    return this.#failures === 0;
  }

  get depth(): { threats: number; audit: number; liveness: number } {
    return {
      threats: this.#threats.length + this.#inFlight,
      audit: this.#audit.length,
      liveness: this.#liveness.size,
    };
  }

  get committedBatches(): number {
    return this.#committedBatches;
  }

  /** Resolves once committed: true when stored now, false for a report already stored. */
  submitThreat(report: ThreatReport): Promise<boolean> {
    if (this.#stopped || this.#intakeClosed) {
      return Promise.reject(new CitadelError('storage_unavailable', { retryAfterMs: 5_000 }));
    }
    // The bound counts the batch being written too: it comes back to the
    // queue if the write fails.
    if (this.#threats.length + this.#inFlight >= this.#settings.maxPendingThreats) {
      const retryAfterMs = this.#backpressureDelayMs();
      return Promise.reject(new CitadelError('storage_unavailable', { retryAfterMs }));
    }
    return new Promise((resolve, reject) => {
      this.#threats.push({ report, resolve, reject });
      this.#schedule();
    });
  }

  /** Records the agent's latest status (and heartbeat time, when it has one). */
  recordLiveness(agentId: string, status: AgentStatus, lastHeartbeat: string | null): void {
    const previous = this.#liveness.get(agentId);
    this.#liveness.set(agentId, {
      status,
      lastHeartbeat: lastHeartbeat ?? previous?.lastHeartbeat ?? null,
    });
    this.#schedule();
  }

  /** Records an agent's budget state; only the latest per agent is written. */
  recordBudgets(agentId: string, snapshot: BudgetSnapshot): void {
    this.#budgets.set(agentId, snapshot);
    this.#schedule();
  }

  appendAudit(event: AuditEvent): void {
    if (this.#audit.length >= this.#settings.maxPendingAudit) {
      this.#log.error({ event: event.eventType }, 'write-behind:audit-queue-full, event lost');
      return;
    }
    this.#audit.push(event);
    this.#schedule();
  }

  /** Refuses new threats (`storage_unavailable`) while what is queued drains; for shutdown. */
  closeIntake(): void {
    this.#intakeClosed = true;
  }

  /** Flushes everything queued; for shutdown. Rejects after `timeoutMs`. */
  async drain(timeoutMs = 8_000): Promise<void> {
    const deadline = this.#clock.monotonicMs() + timeoutMs;
    const remaining = () => deadline - this.#clock.monotonicMs();
    while (this.#hasWork() || this.#flushing) {
      if (remaining() <= 0) throw new Error('write-behind did not drain in time');
      // A flush stuck on the database must not hold the shutdown past its budget.
      const flush = this.#flushing ?? this.#flush();
      if (!(await settlesWithin(flush, remaining()))) {
        throw new Error('write-behind did not drain in time');
      }
      if (this.#failures > 0) await pause(Math.min(this.#retryDelayMs(), Math.max(0, remaining())));
    }
  }

  /** Stops the flush timer; nothing more is written. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #hasWork(): boolean {
    return (
      this.#threats.length > 0 ||
      this.#audit.length > 0 ||
      this.#liveness.size > 0 ||
      this.#budgets.size > 0
    );
  }

  /**
   * Sets the flush timer: after `delayMs` when given (a retry), else when the
   * queue is due — at once when a batch is full, soon when threats wait,
   * later when only liveness, budget state and audit rows do. A timer already
   * set for earlier stays; one set for later is brought forward.
   */
  #schedule(delayMs?: number): void {
    if (this.#flushing) return;
    const wantedMs = delayMs ?? this.#dueInMs();
    const dueAt = this.#clock.monotonicMs() + wantedMs;
    if (this.#timer) {
      if (dueAt >= this.#timerDueAt) return;
      this.#clock.clearTimeout(this.#timer);
    }
    this.#timerDueAt = dueAt;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#flush();
    }, wantedMs);
  }

  #dueInMs(): number {
    if (this.#threats.length >= this.#settings.maxBatch) return 0;
    return this.#threats.length > 0 ? this.#settings.flushDelayMs : this.#settings.auxFlushDelayMs;
  }

  #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#timer) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#flushing = this.#flushOnce().finally(() => {
      this.#flushing = undefined;
      this.#inFlight = 0;
      if (this.#hasWork() && !this.#stopped) {
        this.#schedule(this.#failures > 0 ? this.#retryDelayMs() : 0);
      }
    });
    return this.#flushing;
  }

  async #flushOnce(): Promise<void> {
    const narrowing = this.#narrowing;
    const isolating = narrowing !== undefined;
    const take = narrowing
      ? Math.min(narrowing.size, narrowing.remaining)
      : this.#settings.maxBatch;
    const threats = this.#threats.splice(0, take);
    this.#inFlight = threats.length;
    const audit = isolating ? [] : this.#audit.splice(0, this.#settings.maxBatch);
    const liveness = isolating ? new Map<string, Liveness>() : this.#liveness;
    const budgets = isolating ? new Map<string, BudgetSnapshot>() : this.#budgets;
    if (!isolating) {
      this.#liveness = new Map();
      this.#budgets = new Map();
    }
    const started = this.#clock.monotonicMs();
    try {
      const stored = await writeBatch(this.#pool, {
        daemonId: this.#daemonId,
        threats: threats.map((t) => t.report),
        liveness: [...liveness].map(([agentId, l]) => ({ agentId, ...l })),
        budgets,
        audit,
      });
      this.#committed(threats, stored, started);
    } catch (error) {
      for (const [agentId, snapshot] of budgets) {
        if (!this.#budgets.has(agentId)) this.#budgets.set(agentId, snapshot);
      }
      this.#failed(error, threats, audit, liveness);
    }
  }

  #committed(
    threats: PendingThreat[],
    stored: ReadonlyArray<{ agent_id: string; report_id: string }>,
    startedMs: number,
  ): void {
    this.#committedBatches += 1;
    const elapsedS = Math.max(0.001, (this.#clock.monotonicMs() - startedMs) / 1_000);
    if (threats.length > 0) {
      this.#throughput = 0.8 * this.#throughput + 0.2 * (threats.length / elapsedS);
    }
    this.#observer?.committed(threats.length, this.#clock.monotonicMs() - startedMs);
    if (this.#failures > 0) this.#log.info('write-behind:recovered, the database answers again');
    this.#failures = 0;
    this.#narrowed(threats.length, 'committed');
    const storedNow = new Set(stored.map((row) => `${row.agent_id}/${row.report_id}`));
    for (const pending of threats) {
      const key = `${pending.report.agentId}/${pending.report.reportId}`;
      pending.resolve(storedNow.delete(key));
    }
    if (stored.length > 0) this.#onThreatsStored(stored.length);
    this.#log.debug(
      { threats: threats.length, stored: stored.length, ms: this.#clock.monotonicMs() - startedMs },
      'write-behind:committed',
    );
  }

  #failed(
    error: unknown,
    threats: PendingThreat[],
    audit: AuditEvent[],
    liveness: Map<string, Liveness>,
  ): void {
    this.#observer?.failed();
    if (isTransientFailure(error)) {
      this.#failures += 1;
      this.#log.error(
        { err: error, failures: this.#failures, queued: this.#threats.length + threats.length },
        'write-behind:flush-failed, will retry',
      );
    } else if (this.#narrowing && threats.length === 1) {
      this.#narrowed(1, 'refused');
      this.#log.error(
        { err: error, reportId: threats[0]!.report.reportId },
        'write-behind:rejected',
      );
      threats[0]!.reject(refusalOf(error));
      return;
    } else if (threats.length > 0) {
      const remaining = this.#narrowing?.remaining ?? threats.length;
      this.#narrowing = { size: Math.ceil(threats.length / 2), remaining };
      this.#log.warn(
        { err: error, threats: threats.length, next: this.#narrowing.size },
        'write-behind:batch-refused, retrying its threats in smaller batches',
      );
    } else {
      this.#log.error(
        { err: error, audit: audit.length, liveness: liveness.size },
        'write-behind:rows-refused, the database rejects them and they are dropped',
      );
      return;
    }
    this.#requeue(threats, audit, liveness);
  }

  /** Counts `count` threats of a refused batch as settled; grows the next batch after a commit. */
  #narrowed(count: number, outcome: 'committed' | 'refused'): void {
    const narrowing = this.#narrowing;
    if (!narrowing) return;
    const remaining = narrowing.remaining - count;
    this.#narrowing =
      remaining > 0
        ? {
            size:
              outcome === 'committed' ? Math.min(this.#settings.maxBatch, narrowing.size * 2) : 1,
            remaining,
          }
        : undefined;
  }

  #requeue(threats: PendingThreat[], audit: AuditEvent[], liveness: Map<string, Liveness>): void {
    this.#threats = [...threats, ...this.#threats];
    this.#audit = [...audit, ...this.#audit];
    for (const [agentId, l] of this.#liveness) {
      const lastHeartbeat = l.lastHeartbeat ?? liveness.get(agentId)?.lastHeartbeat ?? null;
      liveness.set(agentId, { status: l.status, lastHeartbeat });
    }
    this.#liveness = liveness;
  }

  /**
   * How long an agent refused for a full queue should wait: about the time
   * the queue takes to drain at the recent commit rate (at least 5 s while
   * the database is down), within 1–30 s, spread ±20 % so that refused agents
   * do not all come back at once. Too short a delay turns a full queue into
   * a loop of refusals that takes the CPU the drain needs.
   */
  #backpressureDelayMs(): number {
    const drainMs = (this.#threats.length / Math.max(100, this.#throughput)) * 1_000;
    const baseMs = this.#failures > 0 ? Math.max(5_000, this.#retryDelayMs()) : drainMs;
    const clamped = Math.min(30_000, Math.max(1_000, baseMs));
    return Math.round(clamped * (0.8 + 0.4 * Math.random()));
  }

  #retryDelayMs(): number {
    const exp = this.#settings.retryBaseMs * 2 ** Math.min(this.#failures, 10);
    return Math.min(this.#settings.retryMaxMs, exp);
  }
}

/** SQLSTATE classes and codes of a database that is away or busy, not of bad rows. */
const transientSqlState = /^(08|53|57P0[1-5]|40001|40P01|55P03|58)/;
const transientNodeError = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const transientSlonikError = new Set([
  'ConnectionError',
  'BackendTerminatedError',
  'BackendTerminatedUnexpectedlyError',
  'IdleTransactionTimeoutError',
  'StatementTimeoutError',
  'StatementCancelledError',
]);

/**
 * Whether a failed flush is the database being away or busy (retry the batch
 * as it is) rather than the batch itself being refused (narrow its threats
 * down, so one bad report fails alone). Only failures known to be transient
 * are treated so: an unknown failure that really is transient costs one
 * narrowing pass, while an unknown data error treated as transient would
 * stall every agent's threats behind it.
 */
export function isTransientFailure(error: unknown): boolean {
  for (const { error: e, code } of causes(error)) {
    if (code !== undefined && (transientSqlState.test(code) || transientNodeError.has(code))) {
      return true;
    }
    if (transientSlonikError.has(e.name)) return true;
    if (
      /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(
        e.message,
      )
    ) {
      return true;
    }
  }
  return false;
}

/**
 * What the agent is told of a report the database refused alone: the
 * report's own data (SQLSTATE class 22, a data exception) is its sender's
 * mistake, and resending it cannot help; anything else is ours.
 */
function refusalOf(error: unknown): CitadelError {
  for (const { error: e, code } of causes(error)) {
    if (code?.startsWith('22')) {
      return new CitadelError('invalid_message', {
        message: `the database refused the report: ${e.message}`,
        cause: error,
      });
    }
  }
  return new CitadelError('internal_error', { cause: error });
}

/** The error and the causes under it, outermost first, each with its string `code` if any. */
function* causes(error: unknown): Generator<{ error: Error; code: string | undefined }> {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    yield { error: e, code: typeof code === 'string' ? code : undefined };
  }
}

/** Whether the promise settled within `ms`; the timer does not outlive the answer. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
