/**
 * Threats: filtered, cursor-paged listing for viewers, and the status change
 * open → acknowledged → resolved for responders. Any other move is 409. The
 * change and its audit row commit together; the commit notifies every
 * daemon's feed.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { actorOf } from '../../credentials/admin-tokens.ts';
import { insertAuditEvents } from '../../database/queries/audit.ts';
import {
  findThreat,
  findThreatForUpdate,
  listThreats,
  updateThreatStatus,
} from '../../database/queries/threats.ts';
import { type ThreatStatus, threatResolutions, threatStatuses } from '../../database/rows.ts';
import { CitadelError } from '../../errors/catalogue.ts';
import { requireRole } from '../auth.ts';
import type { HttpDeps } from '../deps.ts';
import { defaultPageLimit, maxPageLimit } from '../paging.ts';
import { parseInput } from '../validation.ts';

const cursor = z.string().regex(/^\d{1,15}$/, 'a cursor from a previous page');

const listQuery = z.strictObject({
  status: z.enum(threatStatuses).optional(),
  agent_id: z.uuid().optional(),
  min_severity: z.coerce.number().int().min(1).max(10).optional(),
  after: cursor.optional(),
  limit: z.coerce.number().int().min(1).max(maxPageLimit).default(defaultPageLimit),
});
const idParams = z.strictObject({ id: z.uuid() });
const patchBody = z
  .strictObject({
    // Any of the three: a move the status may not make is 409, not 400.
    status: z.enum(threatStatuses),
    note: z.string().max(2_000).optional(),
    resolution: z.enum(threatResolutions).optional(),
  })
  .refine((body) => body.status !== 'resolved' || body.resolution !== undefined, {
    message: 'resolving needs a resolution',
    path: ['resolution'],
  });

/** The only moves a threat's status may make. */
const allowedMoves: Record<ThreatStatus, ThreatStatus | undefined> = {
  open: 'acknowledged',
  acknowledged: 'resolved',
  resolved: undefined,
};

export function registerThreatRoutes(app: FastifyInstance, deps: HttpDeps): void {
  app.get('/api/v1/threats', { preHandler: requireRole(deps, 'viewer') }, async (request) => {
    const query = parseInput(listQuery, request.query);
    const items = await listThreats(deps.pool, {
      ...(query.status === undefined ? {} : { status: query.status }),
      ...(query.agent_id === undefined ? {} : { agentId: query.agent_id }),
      ...(query.min_severity === undefined ? {} : { minSeverity: query.min_severity }),
      ...(query.after === undefined ? {} : { after: Number(query.after) }),
      limit: query.limit,
    });
    const next = items.length === query.limit ? (items.at(-1)?.cursor ?? null) : null;
    return { items, next };
  });

  app.get('/api/v1/threats/:id', { preHandler: requireRole(deps, 'viewer') }, async (request) => {
    const { id } = parseInput(idParams, request.params);
    const threat = await findThreat(deps.pool, id);
    if (!threat) throw new CitadelError('not_found');
    return threat;
  });

  app.patch(
    '/api/v1/threats/:id',
    { preHandler: requireRole(deps, 'responder') },
    async (request) => {
      const { id } = parseInput(idParams, request.params);
      const body = parseInput(patchBody, request.body);
      const admin = request.admin!;
      const updated = await deps.pool.transaction(async (tx) => {
        const threat = await findThreatForUpdate(tx, id);
        if (!threat) throw new CitadelError('not_found');
        if (allowedMoves[threat.status] !== body.status) {
          throw new CitadelError('invalid_transition', {
            message: `a threat cannot move from ${threat.status} to ${body.status}`,
            details: { from: threat.status, to: body.status },
          });
        }
        const row = await updateThreatStatus(tx, {
          id,
          status: body.status,
          actor: actorOf(admin),
          note: body.note ?? null,
          resolution: body.resolution ?? null,
        });
        await insertAuditEvents(tx, [
          {
            agentId: row.agent_id,
            eventType: 'threat.status_changed',
            severity: 'info',
            actor: actorOf(admin),
            action: `${threat.status} -> ${body.status}`,
            result: 'success',
            details: {
              threat_id: id,
              note: body.note ?? null,
              resolution: body.resolution ?? null,
            },
          },
        ]);
        return row;
      });
      // Every daemon's feed, this one's too, hears of it from the database (src/cluster/).
      return updated;
    },
  );
}
