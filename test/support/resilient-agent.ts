/**
 * A test agent that behaves as the contract asks of agents under faults: it
 * keeps every report until it is acked, resends the unacked ones after each
 * reconnect, honours `retry_after_ms`, and reconnects with a short backoff.
 * Tests use it to prove that what the daemon acked is stored, exactly once.
 */
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';

export class ResilientAgent {
  readonly acked = new Set<string>();
  readonly unacked = new Map<string, object>();
  /** `error` frames received for reports (rate_limited, storage_unavailable). */
  refusals = 0;
  readonly closes: Array<{ code: number; reason: string }> = [];
  #ws: WebSocket | undefined;
  #stopped = false;
  #connects = 0;

  readonly url: string;
  readonly ca: string;
  readonly token: string;

  constructor(url: string, ca: string, token: string) {
    this.url = url;
    this.ca = ca;
    this.token = token;
  }

  get connects(): number {
    return this.#connects;
  }

  get isOpen(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.#connect();
  }

  /** Sends a heartbeat every `everyMs` while connected, until stopped. */
  heartbeatEvery(everyMs: number): void {
    const timer = setInterval(() => {
      if (this.#stopped) clearInterval(timer);
      else if (this.isOpen) this.#ws!.send(JSON.stringify({ type: 'heartbeat' }));
    }, everyMs);
  }

  report(): string {
    const id = randomUUID();
    const message = {
      type: 'threat',
      id,
      threat_type: 'test.fault',
      severity: 4,
      title: 'fault probe',
      details: { n: this.unacked.size + this.acked.size },
      detected_at: new Date().toISOString(),
    };
    this.unacked.set(id, message);
    if (this.isOpen) this.#ws!.send(JSON.stringify(message));
    return id;
  }

  stop(): void {
    this.#stopped = true;
    this.#ws?.close(1000);
  }

  #connect(): void {
    if (this.#stopped) return;
    const ws = new WebSocket(this.url, {
      ca: this.ca,
      headers: { authorization: `Bearer ${this.token}` },
    });
    this.#ws = ws;
    ws.on('message', (data) => this.#onMessage(ws, JSON.parse(data.toString())));
    ws.on('close', (code, reason) => {
      this.closes.push({ code, reason: reason.toString() });
      setTimeout(() => this.#connect(), 200 + Math.random() * 300);
    });
    ws.on('error', () => {});
  }

  #onMessage(
    ws: WebSocket,
    message: { type: string; id?: string; ref?: string; retry_after_ms?: number },
  ) {
    if (message.type === 'welcome') {
      this.#connects += 1;
      for (const report of this.unacked.values()) ws.send(JSON.stringify(report));
    } else if (message.type === 'ack' && message.id) {
      this.unacked.delete(message.id);
      this.acked.add(message.id);
    } else if (message.type === 'error' && message.ref) {
      this.refusals += 1;
      const report = this.unacked.get(message.ref);
      if (!report) return;
      setTimeout(() => {
        if (ws.readyState === WebSocket.OPEN && this.unacked.has(message.ref!)) {
          ws.send(JSON.stringify(report));
        }
      }, message.retry_after_ms ?? 500);
    }
  }
}
