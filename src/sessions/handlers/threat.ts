/**
 * `{"type":"threat", …}`: a report, already validated by the protocol guard.
 * It joins the write-behind queue and is acked only once its batch has
 * committed. A report the daemon already stored is acked again. When storage
 * is unavailable the agent gets `storage_unavailable` with `ref` and
 * `retry_after_ms`, and no ack: it keeps the report and sends it later.
 */
import { isCitadelError } from '../../errors/catalogue.ts';
import type { AgentSession } from '../agent-session.ts';
import type { ThreatMessage } from '../protocol.ts';

export async function handleThreat(session: AgentSession, message: ThreatMessage): Promise<void> {
  if (!session.spend('threat', message.id)) return;
  try {
    const stored = await session.deps.writeBehind.submitThreat({
      agentId: session.agentId,
      reportId: message.id,
      threatType: message.threat_type,
      severity: message.severity,
      hostname: session.hostname,
      title: message.title,
      detectedAt: message.detected_at,
      details: message.details,
    });
    session.send({ type: 'ack', id: message.id });
    session.log.debug({ reportId: message.id, duplicate: !stored }, 'threat:acked');
  } catch (error) {
    const known = isCitadelError(error) ? error : undefined;
    if (!known) session.log.error({ err: error, reportId: message.id }, 'threat:failed');
    session.send({
      type: 'error',
      code: known?.code ?? 'internal_error',
      message: known?.message ?? 'the report could not be stored',
      ref: message.id,
      ...(known?.retryAfterMs === undefined ? {} : { retry_after_ms: known.retryAfterMs }),
    });
  }
}
