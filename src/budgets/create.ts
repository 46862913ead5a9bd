/** Builds the budget services from the configuration. */
import type { Clock } from '../clock/clock.ts';
import type { Config } from '../config/config.ts';
import type { AuditEvent } from '../database/rows.ts';
import { trustedProxyList } from '../net/client-ip.ts';
import type { BudgetServices } from './budget-services.ts';
import { FailureBudget } from './failure-budget.ts';
import { RefusalLedger } from './refusals.ts';

export function createBudgetServices(
  config: Config,
  clock: Clock,
  audit: (event: AuditEvent) => void,
): BudgetServices {
  const failures = config.budgets.authFailuresPerIp;
  return {
    policy: config.budgets,
    failures: failures ? new FailureBudget(failures, clock) : undefined,
    refusals: new RefusalLedger(clock, audit),
    trustedProxies: trustedProxyList(config.trustedProxies),
  };
}
