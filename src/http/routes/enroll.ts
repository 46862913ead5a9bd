/** `POST /api/v1/enroll`: an enrollment secret and an identity buy a token. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { guardAuthFailures, rateLimited } from '../../budgets/budget-services.ts';
import { spendIpBudget } from '../../budgets/ip-budgets.ts';
import { enroll } from '../../credentials/enrollment.ts';
import { isCitadelError } from '../../errors/catalogue.ts';
import { closeCodes } from '../../sessions/close-codes.ts';
import type { HttpDeps } from '../deps.ts';
import { parseInput } from '../validation.ts';

const enrollBody = z.strictObject({
  hostname: z
    .string()
    .min(1)
    .max(253)
    .regex(/^[A-Za-z0-9._-]+$/, 'a host name: letters, digits, dots, dashes, underscores'),
  enrollment_secret: z.string().min(1).max(200),
  machine_id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._:-]+$/)
    .optional(),
});

export function registerEnrollRoutes(app: FastifyInstance, deps: HttpDeps): void {
  app.post('/api/v1/enroll', async (request, reply) => {
    const body = parseInput(enrollBody, request.body);
    guardAuthFailures(deps.budgets, request.ip);
    const spec = deps.budgets.policy.enrollmentPerIp;
    if (spec) {
      const decision = await spendIpBudget(deps.pool, 'enroll', request.ip, spec);
      if (!decision.allowed) {
        deps.budgets.refusals.record({ budget: 'enrollment', ip: request.ip });
        throw rateLimited('enrollment', decision.retryAfterMs);
      }
    }
    try {
      const result = await enroll(
        deps.pool,
        deps.hasher,
        {
          hostname: body.hostname,
          machineId: body.machine_id,
          secret: body.enrollment_secret,
          ipAddress: request.ip,
        },
        deps.clock.now(),
        deps.config.agentTokenTtlMs,
      );
      request.log.info(
        { agentId: result.agentId, reenrolled: result.reenrolled },
        'agent:enrolled',
      );
      if (result.reenrolled) {
        deps.registry.get(result.agentId)?.close(closeCodes.tokenInvalid, 'agent re-enrolled');
      }
      return reply.code(201).send({
        agent_id: result.agentId,
        token: result.token,
        token_expires_at: result.expiresAt,
        heartbeat_interval_s: deps.config.heartbeatIntervalMs / 1_000,
      });
    } catch (error) {
      if (isCitadelError(error) && error.code === 'enrollment_refused') {
        deps.budgets.failures?.fail(request.ip);
        deps.writeBehind.appendAudit({
          eventType: 'agent.enroll_failed',
          severity: 'warning',
          actor: `ip:${request.ip}`,
          action: 'enroll',
          result: 'failure',
          details: {
            source_ip: request.ip,
            hostname: body.hostname,
            reason: error.details?.['reason'] ?? null,
          },
        });
      }
      throw error;
    }
  });
}
