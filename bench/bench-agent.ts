/**
 * One simulated agent inside a load generator: a real TLS WebSocket session
 * speaking the agent protocol (welcome, heartbeat → heartbeat_ack, threat →
 * ack after commit). It heartbeats on the announced interval with a random
 * phase, records every round trip in the generator's shared `Recorder`, and
 * when reconnecting is on, it comes back after a server close the way the
 * reference agent does: after the server's hint, then with capped
 * exponential backoff and full jitter.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

/** The credentials one agent was provisioned with. */
export interface AgentCredential {
  readonly agentId: string;
  readonly token: string;
}

/** What every agent of a generator shares: where, how, and where samples go. */
export interface AgentContext {
  readonly url: string;
  readonly ca: string;
  readonly localAddress: string;
  /** `citadel`: wait for the welcome; `bare`: the socket open is enough. */
  readonly protocol: 'citadel' | 'bare';
  /** Replaced by a fresh one each time the harness takes the samples. */
  recorder: Recorder;
  heartbeats: boolean;
  reconnect: boolean;
}

/** Samples and counters, taken and reset by the harness between phases. */
export class Recorder {
  heartbeatMs: number[] = [];
  ackMs: number[] = [];
  feedMs: number[] = [];
  welcomesAt: number[] = [];
  acks = 0;
  errors: Record<string, number> = {};
  refusals: Record<string, number> = {};

  countError(code: string): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1;
  }

  countRefusal(reason: string): void {
    this.refusals[reason] = (this.refusals[reason] ?? 0) + 1;
  }
}

const backoffBaseMs = 500;
const backoffCapMs = 10_000;

/** Runs when a threat is acked or refused, so the caller can send the next. */
export type ThreatSettled = (agent: BenchAgent, acked: boolean) => void;

export class BenchAgent {
  readonly credential: AgentCredential;
  readonly #context: AgentContext;
  #socket: WebSocket | undefined;
  #welcomed = false;
  #intervalMs = 60_000;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #heartbeatsSent: number[] = [];
  #threatsSent = new Map<string, number>();
  #attempt = 0;
  onThreatSettled: ThreatSettled | undefined;

  constructor(credential: AgentCredential, context: AgentContext) {
    this.credential = credential;
    this.#context = context;
  }

  get online(): boolean {
    return this.#welcomed;
  }

  get outstandingThreats(): number {
    return this.#threatsSent.size;
  }

  /** Opens the session; true once welcomed (or open, for the bare server). */
  connect(timeoutMs = 60_000): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = new WebSocket(this.#context.url, {
        ca: this.#context.ca,
        localAddress: this.#context.localAddress,
        headers: { Authorization: `Bearer ${this.credential.token}` },
        perMessageDeflate: false,
        handshakeTimeout: timeoutMs,
      });
      this.#socket = socket;
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        resolve(ok);
      };
      socket.on('unexpected-response', (_request, response) => {
        this.#context.recorder.countRefusal(`http_${response.statusCode}`);
        socket.terminate();
        settle(false);
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        this.#context.recorder.countRefusal(error.code ?? 'socket_error');
        settle(false);
      });
      socket.on('open', () => {
        if (this.#context.protocol === 'bare') this.#onWelcome(60_000, settle);
      });
      socket.on('message', (data) => this.#onMessage(data.toString(), settle));
      socket.on('close', (code, reason) => {
        settle(false);
        this.#onClose(socket, code, reason.toString());
      });
    });
  }

  /** Sends one threat report; `details` may carry a probe timestamp. */
  sendThreat(details: Record<string, unknown>): boolean {
    if (!this.#welcomed || !this.#socket) return false;
    const id = randomUUID();
    this.#threatsSent.set(id, performance.now());
    this.#socket.send(
      JSON.stringify({
        type: 'threat',
        id,
        threat_type: 'bench.load',
        severity: 1 + Math.floor(Math.random() * 10),
        title: 'benchmark threat',
        details,
        detected_at: new Date().toISOString(),
      }),
    );
    return true;
  }

  /** Closes the session for good. */
  close(): void {
    clearTimeout(this.#heartbeatTimer);
    this.#socket?.terminate();
  }

  #onWelcome(intervalMs: number, settle: (ok: boolean) => void): void {
    this.#welcomed = true;
    this.#attempt = 0;
    this.#intervalMs = intervalMs;
    this.#context.recorder.welcomesAt.push(Date.now());
    this.#scheduleHeartbeat(Math.random() * intervalMs);
    settle(true);
  }

  #onMessage(text: string, settle: (ok: boolean) => void): void {
    const message = JSON.parse(text) as Record<string, unknown>;
    switch (message['type']) {
      case 'welcome':
        this.#onWelcome(Number(message['heartbeat_interval_s']) * 1_000, settle);
        return;
      case 'heartbeat_ack': {
        const sentAt = this.#heartbeatsSent.shift();
        if (sentAt === undefined) return;
        this.#context.recorder.heartbeatMs.push(performance.now() - sentAt);
        return;
      }
      case 'ack':
        this.#settleThreat(String(message['id']), true);
        return;
      case 'error':
        this.#context.recorder.countError(String(message['code']));
        if (typeof message['ref'] === 'string') this.#settleThreat(message['ref'], false);
        // A heartbeat refused by its budget gets no ack: its send time must
        // not be paired with the next heartbeat's ack.
        else if (message['code'] === 'rate_limited' && /heartbeat/.test(String(message['message'])))
          this.#heartbeatsSent.shift();
        return;
    }
  }

  #settleThreat(id: string, acked: boolean): void {
    const sentAt = this.#threatsSent.get(id);
    if (sentAt === undefined) return;
    this.#threatsSent.delete(id);
    if (acked) {
      this.#context.recorder.acks += 1;
      this.#context.recorder.ackMs.push(performance.now() - sentAt);
    }
    this.onThreatSettled?.(this, acked);
  }

  #scheduleHeartbeat(delayMs: number): void {
    clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = setTimeout(() => {
      if (!this.#welcomed || !this.#socket) return;
      if (this.#context.heartbeats && this.#context.protocol === 'citadel') {
        this.#heartbeatsSent.push(performance.now());
        this.#socket.send('{"type":"heartbeat"}');
      }
      this.#scheduleHeartbeat(this.#intervalMs);
    }, delayMs);
  }

  #onClose(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.#socket) return;
    const wasOnline = this.#welcomed;
    this.#welcomed = false;
    this.#heartbeatsSent = [];
    this.#threatsSent.clear();
    clearTimeout(this.#heartbeatTimer);
    if (!this.#context.reconnect) return;
    const hint = /reconnect_after_ms=(\d+)/.exec(reason);
    const delayMs = wasOnline && hint ? Number(hint[1]) : this.#backoffMs();
    if (wasOnline) this.#context.recorder.countRefusal(`closed_${code}`);
    setTimeout(() => void this.#reconnect(), delayMs);
  }

  /** Every failed attempt also ends in `close`, which schedules the next one. */
  async #reconnect(): Promise<void> {
    if (this.#context.reconnect) await this.connect();
  }

  #backoffMs(): number {
    const ceiling = Math.min(backoffCapMs, backoffBaseMs * 2 ** this.#attempt);
    this.#attempt += 1;
    return Math.random() * ceiling;
  }
}
