/**
 * The reference agent's supervisor: it holds one session at a time and
 * decides what follows each one.
 *
 * States: `enrolling` (no identity yet, or the server rejected the token and
 * a secret is at hand) → `connected` (a session is live) → `waiting` (a
 * backoff or server-given delay before the next session) → `connected` …;
 * `stopped` after `stop()` or a failure that retrying cannot cure (a refused
 * certificate or secret, a rejected token with no secret to enroll again).
 *
 * The identity on disk is replaced only by a successful enrollment and never
 * deleted: network failures and server errors only ever lead to a retry.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock/clock.ts';
import { Backoff, type BackoffSettings, withSpread } from './backoff.ts';
import { enroll } from './enroll.ts';
import { ClientError, isClientError } from './errors.ts';
import { endpoint } from './https-json.ts';
import { reconnectHintMs } from './messages.ts';
import { Outbox } from './outbox.ts';
import type { ThreatReport } from './report.ts';
import { AgentSession, type SessionEnd } from './session.ts';
import {
  type AgentIdentity,
  loadIdentity,
  outboxDirectoryName,
  prepareStateDirectory,
  saveIdentity,
} from './state-dir.ts';
import type { Trust } from './trust.ts';

export interface AgentSettings {
  readonly server: URL;
  readonly trust: Trust;
  readonly stateDirectory: string;
  readonly hostname: string;
  readonly machineId?: string;
  /** Reads the enrollment secret when one is needed; `undefined` when there is none. */
  readonly readEnrollmentSecret: () => Promise<string | undefined>;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly random?: () => number;
  readonly backoff?: Partial<BackoffSettings>;
  /** A session welcomed for this long resets the backoff. */
  readonly stableSessionMs?: number;
  /** The longest server reconnect hint honoured. */
  readonly maxReconnectHintMs?: number;
  readonly maxOutboxReports?: number;
  readonly sessionWelcomeTimeoutMs?: number;
}

type State = 'idle' | 'enrolling' | 'connected' | 'waiting' | 'stopped';

const defaultStableSessionMs = 30_000;
const defaultMaxReconnectHintMs = 15 * 60_000;

/** The reference agent; `start()`, then `run()` until `stop()` or a fatal error. */
export class ReferenceAgent {
  readonly #settings: AgentSettings;
  readonly #log: Logger;
  readonly #backoff: Backoff;
  readonly #random: () => number;
  #state: State = 'idle';
  #stopping = false;
  #outbox: Outbox | undefined;
  #identity: AgentIdentity | undefined;
  #session: AgentSession | undefined;
  #lastHeartbeatAtMs: number | undefined;
  #wake: (() => void) | undefined;

  constructor(settings: AgentSettings) {
    this.#settings = settings;
    this.#log = settings.logger;
    this.#random = settings.random ?? Math.random;
    this.#backoff = new Backoff({ random: this.#random, ...settings.backoff });
  }

  get state(): State {
    return this.#state;
  }

  get identity(): AgentIdentity | undefined {
    return this.#identity;
  }

  get outbox(): Outbox {
    if (!this.#outbox) throw new Error('the agent is not started');
    return this.#outbox;
  }

  /** Prepares the state directory and loads the identity and the outbox. */
  async start(): Promise<void> {
    const directory = this.#settings.stateDirectory;
    await prepareStateDirectory(directory);
    this.#identity = await loadIdentity(directory);
    const { outbox, damaged } = await Outbox.open(join(directory, outboxDirectoryName), {
      ...(this.#settings.maxOutboxReports ? { maxReports: this.#settings.maxOutboxReports } : {}),
    });
    for (const damage of damaged) this.#log.error(damage, 'outbox:entry_set_aside');
    this.#outbox = outbox;
    this.#log.info(
      { agentId: this.#identity?.agentId, pendingReports: outbox.size },
      this.#identity ? 'agent:identity_loaded' : 'agent:not_enrolled',
    );
  }

  /** Stores a report durably and sends it when a session is open. */
  async submit(report: ThreatReport): Promise<void> {
    await this.outbox.add(report);
    this.#session?.notifyReports();
  }

  /**
   * Holds sessions until `stop()`. Resolves after a clean stop; rejects with a
   * `ClientError` when the agent cannot go on.
   */
  async run(): Promise<void> {
    try {
      while (!this.#stopping) {
        const identity = this.#identity ?? (await this.#enrollPatiently());
        if (!identity || this.#stopping) break;
        const end = await this.#holdSession(identity);
        if (this.#stopping) break;
        const delayMs = await this.#decideAfter(end);
        if (delayMs === undefined) break;
        await this.#wait(delayMs);
      }
    } finally {
      this.#state = 'stopped';
    }
  }

  /** Ends the session with 1000 and makes `run()` resolve. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#session?.close(1000, 'agent stopping');
    this.#wake?.();
  }

  async #holdSession(identity: AgentIdentity): Promise<SessionEnd> {
    this.#state = 'connected';
    const session = new AgentSession({
      url: endpoint(this.#settings.server, '/api/v1/agent', 'wss:'),
      token: identity.token,
      trust: this.#settings.trust,
      outbox: this.outbox,
      clock: this.#settings.clock,
      logger: this.#log.child({ agentId: identity.agentId }),
      random: this.#random,
      lastHeartbeatAtMs: this.#lastHeartbeatAtMs,
      onToken: (token, expiresAt) => this.#keepToken(token, expiresAt),
      onHeartbeat: (atMs) => {
        this.#lastHeartbeatAtMs = atMs;
      },
      ...(this.#settings.sessionWelcomeTimeoutMs
        ? { welcomeTimeoutMs: this.#settings.sessionWelcomeTimeoutMs }
        : {}),
    });
    this.#session = session;
    session.start();
    const end = await session.ended;
    this.#session = undefined;
    return end;
  }

  /** What to do after a session: a delay before the next one, or a thrown fatal error. */
  async #decideAfter(end: SessionEnd): Promise<number | undefined> {
    if (end.kind === 'failed') {
      if (!end.error.retryable) throw end.error;
      this.#log.warn({ code: end.error.code, reason: end.error.message }, 'session:failed');
      return this.#backoff.nextDelayMs();
    }
    if (end.kind === 'refused') {
      this.#log.warn({ status: end.status }, 'session:upgrade_refused');
      if (end.status === 401) return this.#reenroll();
      if (end.retryAfterMs !== undefined) return withSpread(end.retryAfterMs, 0.1, this.#random);
      return this.#backoff.nextDelayMs();
    }

    const stableMs = this.#settings.stableSessionMs ?? defaultStableSessionMs;
    if (end.welcomed && end.welcomedForMs >= stableMs) this.#backoff.reset();
    return this.#decideAfterClose(end.code, end.reason);
  }

  async #decideAfterClose(code: number, reason: string): Promise<number | undefined> {
    const fields = { code, reason: reason.slice(0, 200) };
    switch (code) {
      case 4401:
        this.#log.warn(fields, 'session:token_rejected');
        return this.#reenroll();
      case 4409:
        this.#log.warn(fields, 'session:replaced_by_newer_session');
        return this.#backoff.nextDelayMs();
      case 1008:
      case 1009:
        this.#log.error(fields, 'session:closed_for_protocol_violation');
        return this.#backoff.nextDelayMs();
      case 1001:
      case 1012: {
        const hintMs = reconnectHintMs(reason);
        this.#log.info({ ...fields, hintMs }, 'session:server_going_away');
        if (hintMs === undefined) return this.#backoff.nextDelayMs();
        return Math.min(hintMs, this.#settings.maxReconnectHintMs ?? defaultMaxReconnectHintMs);
      }
      default:
        this.#log.warn(fields, 'session:closed');
        return this.#backoff.nextDelayMs();
    }
  }

  /**
   * The server refused the token outright. Enrolling again is the cure when
   * there is a secret; without one the agent stops, keeping its identity.
   */
  async #reenroll(): Promise<number | undefined> {
    const secret = await this.#settings.readEnrollmentSecret();
    if (secret === undefined) throw new ClientError('identity_rejected');
    const identity = await this.#enrollPatiently(secret);
    if (!identity) return undefined;
    return this.#backoff.nextDelayMs();
  }

  /** Enrolls, waiting out budgets and outages; `undefined` when stopped meanwhile. */
  async #enrollPatiently(knownSecret?: string): Promise<AgentIdentity | undefined> {
    this.#state = 'enrolling';
    const secret = knownSecret ?? (await this.#settings.readEnrollmentSecret());
    if (secret === undefined) throw new ClientError('no_enrollment_secret');

    while (!this.#stopping) {
      try {
        return await this.#enrollOnce(secret);
      } catch (error) {
        if (!isClientError(error) || !error.retryable) throw error;
        const delayMs =
          error.retryAfterMs === undefined
            ? this.#backoff.nextDelayMs()
            : withSpread(error.retryAfterMs, 0.1, this.#random);
        this.#log.warn({ code: error.code, reason: error.message, delayMs }, 'enroll:retrying');
        await this.#wait(delayMs);
        this.#state = 'enrolling';
      }
    }
    return undefined;
  }

  async #enrollOnce(secret: string): Promise<AgentIdentity> {
    const enrollment = await enroll({
      server: this.#settings.server,
      trust: this.#settings.trust,
      hostname: this.#settings.hostname,
      secret,
      ...(this.#settings.machineId === undefined ? {} : { machineId: this.#settings.machineId }),
    });
    const identity: AgentIdentity = {
      agentId: enrollment.agentId,
      token: enrollment.token,
      tokenExpiresAt: enrollment.tokenExpiresAt,
      server: this.#settings.server.origin,
      enrolledAt: new Date(this.#settings.clock.now()).toISOString(),
    };
    try {
      await saveIdentity(this.#settings.stateDirectory, identity);
    } catch (error) {
      throw new ClientError('state_unusable', {
        message: `cannot save the identity: ${(error as Error).message}`,
        cause: error,
      });
    }
    this.#identity = identity;
    this.#log.info({ agentId: identity.agentId }, 'agent:enrolled');
    return identity;
  }

  async #keepToken(token: string, expiresAt: string): Promise<void> {
    const current = this.#identity;
    if (!current) return;
    const next = { ...current, token, tokenExpiresAt: expiresAt };
    this.#identity = next;
    await saveIdentity(this.#settings.stateDirectory, next);
  }

  /** Waits `delayMs`, or less if `stop()` comes first. */
  async #wait(delayMs: number): Promise<void> {
    if (this.#stopping) return;
    this.#state = 'waiting';
    this.#log.info({ delayMs }, 'agent:waiting');
    await new Promise<void>((resolve) => {
      let handle: TimerHandle | undefined;
      this.#wake = () => {
        if (handle) this.#settings.clock.clearTimeout(handle);
        resolve();
      };
      handle = this.#settings.clock.setTimeout(resolve, delayMs);
    });
    this.#wake = undefined;
  }
}
