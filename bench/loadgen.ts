/**
 * A load generator process: holds a share of the simulated fleet on one
 * loopback source address (so that several generators stay under the
 * per-process file limit and spread over source ports), driven by the
 * harness over IPC.
 *
 * Requests:
 * - `init` {url, ca, localAddress, protocol, agents}: prepares the agents.
 * - `connect` {count?, concurrency}: opens sessions (the first `count`
 *   agents not yet online), retrying each a few times; how many succeeded.
 * - `heartbeats` {on}, `reconnect` {on}: switches behaviour.
 * - `ingest` {window, durationMs}: closed loop, each online agent keeps
 *   `window` threats in flight; acks counted over the duration.
 * - `rate` {perSecond, durationMs, tag}: open loop at a fixed rate.
 * - `feed` {url, token, tag}: subscribes an admin feed socket; threats whose
 *   details carry this generator's tag give send-to-feed latency samples.
 * - `status`, `take` (samples since the last take), `close`.
 */
import WebSocket from 'ws';
import { type AgentContext, type AgentCredential, BenchAgent, Recorder } from './bench-agent.ts';
import { serveRequests } from './ipc.ts';

interface InitArgs {
  readonly url: string;
  readonly ca: string;
  readonly localAddress: string;
  readonly protocol: 'citadel' | 'bare';
  readonly agents: readonly AgentCredential[];
}

let context: AgentContext | undefined;
let agents: BenchAgent[] = [];
let feedSocket: WebSocket | undefined;

function need(): AgentContext {
  if (!context) throw new Error('init first');
  return context;
}

async function connect(args: { count?: number; concurrency: number }): Promise<object> {
  need();
  const waiting = agents.filter((agent) => !agent.online).slice(0, args.count ?? agents.length);
  const began = performance.now();
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < waiting.length) {
      const agent = waiting[next++]!;
      let ok = false;
      for (let attempt = 0; attempt < 4 && !ok; attempt += 1) {
        ok = await agent.connect();
        if (!ok) await pause(200 * (attempt + 1));
      }
      if (!ok) failed += 1;
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, worker));
  return { connected: waiting.length - failed, failed, ms: performance.now() - began };
}

async function ingest(args: { window: number; durationMs: number }): Promise<object> {
  const current = need();
  let running = true;
  const refill = (agent: BenchAgent) => {
    while (running && agent.online && agent.outstandingThreats < args.window) {
      agent.sendThreat({ phase: 'ingest' });
    }
  };
  for (const agent of agents) {
    agent.onThreatSettled = (settled, acked) => {
      if (acked) refill(settled);
      else setTimeout(() => refill(settled), 50);
    };
  }
  for (const agent of agents) refill(agent);
  await pause(args.durationMs);
  running = false;
  const acks = current.recorder.acks;
  await drain(5_000);
  for (const agent of agents) agent.onThreatSettled = undefined;
  return { acksInWindow: acks };
}

async function rate(args: { perSecond: number; durationMs: number; tag: string }): Promise<object> {
  need();
  const online = agents.filter((agent) => agent.online);
  if (online.length === 0) throw new Error('no agent online');
  const began = performance.now();
  let sent = 0;
  let cursor = 0;
  while (performance.now() - began < args.durationMs) {
    const due = Math.floor(((performance.now() - began) / 1_000) * args.perSecond);
    while (sent < due) {
      const agent = online[cursor++ % online.length]!;
      if (agent.sendThreat({ tag: args.tag, probe_ms: performance.now() })) sent += 1;
    }
    await pause(2);
  }
  await drain(10_000);
  return { sent, seconds: (performance.now() - began) / 1_000 };
}

function feed(args: { url: string; ca: string; token: string; tag: string }): Promise<object> {
  const current = need();
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(args.url, {
      ca: args.ca,
      headers: { Authorization: `Bearer ${args.token}` },
      perMessageDeflate: false,
    });
    feedSocket = socket;
    socket.on('open', () => socket.send(JSON.stringify({ type: 'subscribe' })));
    socket.on('error', reject);
    socket.on('unexpected-response', (_r, response) => {
      reject(new Error(`feed refused: ${response.statusCode}`));
    });
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as Record<string, unknown>;
      if (message['type'] === 'subscribed') resolve({ subscribed: true });
      if (message['type'] !== 'threat') return;
      const details = message['details'] as Record<string, unknown> | undefined;
      if (details?.['tag'] === args.tag && typeof details['probe_ms'] === 'number') {
        current.recorder.feedMs.push(performance.now() - details['probe_ms']);
      }
    });
  });
}

async function drain(timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (agents.some((agent) => agent.outstandingThreats > 0) && performance.now() < deadline) {
    await pause(20);
  }
  await pause(100);
}

function take(): object {
  const current = need();
  const recorder = current.recorder;
  const taken = {
    heartbeatMs: recorder.heartbeatMs,
    ackMs: recorder.ackMs,
    feedMs: recorder.feedMs,
    welcomesAt: recorder.welcomesAt,
    acks: recorder.acks,
    errors: recorder.errors,
    refusals: recorder.refusals,
  };
  current.recorder = new Recorder();
  return taken;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

serveRequests({
  init(args: InitArgs) {
    context = {
      url: args.url,
      ca: args.ca,
      localAddress: args.localAddress,
      protocol: args.protocol,
      recorder: new Recorder(),
      heartbeats: true,
      reconnect: false,
    };
    const shared = context;
    agents = args.agents.map((credential) => new BenchAgent(credential, shared));
    return { agents: agents.length };
  },
  connect,
  heartbeats(args: { on: boolean }) {
    need().heartbeats = args.on;
    return true;
  },
  reconnect(args: { on: boolean }) {
    need().reconnect = args.on;
    return true;
  },
  ingest,
  rate,
  feed,
  status() {
    return { online: agents.filter((agent) => agent.online).length, agents: agents.length };
  },
  take,
  close() {
    if (context) context.reconnect = false;
    for (const agent of agents) agent.close();
    feedSocket?.terminate();
    setTimeout(() => process.exit(0), 50);
    return true;
  },
});
