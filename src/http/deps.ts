/** What the HTTP routes need from the rest of the daemon. */
import type { DatabasePool } from 'slonik';
import type { BudgetServices } from '../budgets/budget-services.ts';
import type { Clock } from '../clock/clock.ts';
import type { Config } from '../config/config.ts';
import type { Hasher } from '../credentials/hasher.ts';
import type { FeedHub } from '../feed/feed-hub.ts';
import type { Logger } from '../log/logger.ts';
import type { DaemonMetrics } from '../metrics/metrics.ts';
import type { SessionRegistry } from '../sessions/registry.ts';
import type { WriteBehind } from '../write-behind/write-behind.ts';

export interface HttpDeps {
  readonly config: Config;
  readonly pool: DatabasePool;
  readonly hasher: Hasher;
  readonly writeBehind: WriteBehind;
  readonly registry: SessionRegistry;
  readonly feed: FeedHub;
  readonly budgets: BudgetServices;
  readonly metrics: DaemonMetrics;
  readonly clock: Clock;
  readonly log: Logger;
  /** Whether the database answers and migrations are applied. */
  readonly isReady: () => Promise<boolean>;
}
