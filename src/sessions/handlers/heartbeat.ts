/**
 * `{"type":"heartbeat"}`: the agent is alive. The actor restarts its liveness
 * timers; the heartbeat time reaches the database through the write-behind
 * path, coalesced to one row update per agent per flush. A heartbeat over
 * the heartbeat budget is refused with `rate_limited` and changes nothing.
 */
import type { AgentSession } from '../agent-session.ts';

export function handleHeartbeat(session: AgentSession): void {
  if (!session.spend('heartbeat')) return;
  const at = new Date(session.deps.clock.now()).toISOString();
  session.actor?.send({ type: 'HEARTBEAT' });
  session.deps.writeBehind.recordLiveness(session.agentId, 'active', at);
  session.send({ type: 'heartbeat_ack' });
}
