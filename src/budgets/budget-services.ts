/**
 * What the HTTP routes and the socket routes share to enforce budgets: the
 * policy, the per-IP failed-authentication budget, the ledger of refusals,
 * and the trusted proxies that decide which address is the client's.
 */
import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { BudgetPolicy } from '../config/config.ts';
import { CitadelError } from '../errors/catalogue.ts';
import { clientIp } from '../net/client-ip.ts';
import type { FailureBudget } from './failure-budget.ts';
import type { RefusalLedger } from './refusals.ts';

export interface BudgetServices {
  readonly policy: BudgetPolicy;
  readonly failures: FailureBudget | undefined;
  readonly refusals: RefusalLedger;
  readonly trustedProxies: BlockList;
}

/** The 429 answer, with the delay a client must wait. */
export function rateLimited(budget: string, retryAfterMs: number): CitadelError {
  return new CitadelError('rate_limited', {
    message: `over the ${budget} budget; retry after ${Math.ceil(retryAfterMs / 1_000)} s`,
    retryAfterMs,
    details: { budget },
  });
}

/** Refuses a client whose failed authentications are over budget, before any check. */
export function guardAuthFailures(budgets: BudgetServices, ip: string): void {
  const decision = budgets.failures?.check(ip);
  if (decision && !decision.allowed) {
    budgets.refusals.record({ budget: 'auth_failures', ip });
    throw rateLimited('auth_failures', decision.retryAfterMs);
  }
}

export function upgradeClientIp(budgets: BudgetServices, request: IncomingMessage): string {
  return clientIp(request, budgets.trustedProxies);
}
