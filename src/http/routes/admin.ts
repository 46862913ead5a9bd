/** Admin-only acts: enrollment secrets, admin tokens, the audit trail. */
import type { FastifyInstance } from 'fastify';
import type { DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import { type AdminPrincipal, actorOf, createAdminToken } from '../../credentials/admin-tokens.ts';
import { createEnrollmentSecret } from '../../credentials/enrollment.ts';
import { insertAuditEvents, listAuditEvents } from '../../database/queries/audit.ts';
import { notifyAdminTokenRevoked } from '../../database/queries/cluster.ts';
import {
  listAdminTokens,
  listEnrollmentSecrets,
  revokeAdminToken,
  revokeEnrollmentSecret,
} from '../../database/queries/credentials.ts';
import { adminRoles } from '../../database/rows.ts';
import { CitadelError } from '../../errors/catalogue.ts';
import { requireRole } from '../auth.ts';
import type { HttpDeps } from '../deps.ts';
import { defaultPageLimit, maxPageLimit } from '../paging.ts';
import { parseInput } from '../validation.ts';

const secretBody = z.strictObject({
  max_uses: z.int().min(1).max(1_000_000).optional(),
  expires_in_s: z
    .int()
    .min(60)
    .max(366 * 86_400)
    .optional(),
});
const tokenBody = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9._-]+$/),
  role: z.enum(adminRoles),
  expires_in_s: z
    .int()
    .min(60)
    .max(5 * 366 * 86_400)
    .optional(),
});
const idParams = z.strictObject({ id: z.uuid() });
const auditQuery = z.strictObject({
  after: z
    .string()
    .regex(/^\d{1,15}$/)
    .optional(),
  event_type: z.string().max(64).optional(),
  agent_id: z.uuid().optional(),
  limit: z.coerce.number().int().min(1).max(maxPageLimit).default(defaultPageLimit),
});

/** When a credential created now with `expires_in_s` expires, or null for never. */
function expiryFrom(deps: HttpDeps, expiresInS: number | undefined): string | null {
  return expiresInS === undefined
    ? null
    : new Date(deps.clock.now() + expiresInS * 1_000).toISOString();
}

/** Revokes a credential and audits it in one transaction; 404 when nothing was live. */
async function revokeWithAudit(
  deps: HttpDeps,
  principal: AdminPrincipal,
  sourceIp: string,
  act: {
    revoke: (tx: DatabaseTransactionConnection) => Promise<boolean>;
    eventType: string;
    action: string;
    details: Record<string, unknown>;
  },
): Promise<void> {
  await deps.pool.transaction(async (tx) => {
    if (!(await act.revoke(tx))) throw new CitadelError('not_found');
    await insertAuditEvents(tx, [
      {
        eventType: act.eventType,
        severity: 'warning',
        actor: actorOf(principal),
        action: act.action,
        result: 'success',
        details: { ...act.details, source_ip: sourceIp },
      },
    ]);
  });
}

export function registerAdminRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const admin = { preHandler: requireRole(deps, 'admin') };

  app.post('/api/v1/enrollment-secrets', admin, async (request, reply) => {
    const body = parseInput(secretBody, request.body);
    const actor = actorOf(request.admin!);
    const expiresAt = expiryFrom(deps, body.expires_in_s);
    const created = await deps.pool.transaction(async (tx) => {
      const secret = await createEnrollmentSecret(tx, deps.hasher, {
        createdBy: actor,
        maxUses: body.max_uses ?? null,
        expiresAt,
      });
      await insertAuditEvents(tx, [
        {
          eventType: 'enrollment_secret.created',
          severity: 'info',
          actor,
          action: 'create enrollment secret',
          result: 'success',
          details: { secret_id: secret.id, max_uses: body.max_uses ?? null, expires_at: expiresAt },
        },
      ]);
      return secret;
    });
    return reply.code(201).send({
      id: created.id,
      secret: created.secret,
      max_uses: body.max_uses ?? null,
      expires_at: expiresAt,
    });
  });

  app.post('/api/v1/admin-tokens', admin, async (request, reply) => {
    const body = parseInput(tokenBody, request.body);
    const actor = actorOf(request.admin!);
    const expiresAt = expiryFrom(deps, body.expires_in_s);
    const created = await deps.pool.transaction(async (tx) => {
      const token = await createAdminToken(tx, deps.hasher, {
        name: body.name,
        role: body.role,
        createdBy: actor,
        expiresAt,
      });
      await insertAuditEvents(tx, [
        {
          eventType: 'admin_token.created',
          severity: 'warning',
          actor,
          action: 'create admin token',
          result: 'success',
          details: { token_id: token.id, name: body.name, role: body.role },
        },
      ]);
      return token;
    });
    return reply.code(201).send({
      id: created.id,
      token: created.token,
      name: body.name,
      role: body.role,
      expires_at: expiresAt,
    });
  });

  app.get('/api/v1/admin-tokens', admin, async () => ({ items: await listAdminTokens(deps.pool) }));

  app.post('/api/v1/admin-tokens/:id/revoke', admin, async (request) => {
    const { id } = parseInput(idParams, request.params);
    await revokeWithAudit(deps, request.admin!, request.ip, {
      revoke: async (tx) => {
        if (!(await revokeAdminToken(tx, id))) return false;
        await notifyAdminTokenRevoked(tx, id);
        return true;
      },
      eventType: 'admin_token.revoked',
      action: 'revoke admin token',
      details: { token_id: id },
    });
    deps.feed.closeToken(id);
    return { id, revoked: true };
  });

  app.get('/api/v1/enrollment-secrets', admin, async () => ({
    items: await listEnrollmentSecrets(deps.pool),
  }));

  app.post('/api/v1/enrollment-secrets/:id/revoke', admin, async (request) => {
    const { id } = parseInput(idParams, request.params);
    await revokeWithAudit(deps, request.admin!, request.ip, {
      revoke: (tx) => revokeEnrollmentSecret(tx, id),
      eventType: 'enrollment_secret.revoked',
      action: 'revoke enrollment secret',
      details: { secret_id: id },
    });
    return { id, revoked: true };
  });

  app.get('/api/v1/audit', admin, async (request) => {
    const query = parseInput(auditQuery, request.query);
    const items = await listAuditEvents(deps.pool, {
      ...(query.after === undefined ? {} : { after: Number(query.after) }),
      ...(query.event_type === undefined ? {} : { eventType: query.event_type }),
      ...(query.agent_id === undefined ? {} : { agentId: query.agent_id }),
      limit: query.limit,
    });
    const next = items.length === query.limit ? (items.at(-1)?.cursor ?? null) : null;
    return { items, next };
  });
}
