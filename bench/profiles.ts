/**
 * The two profiles of the harness. `quick` (the default, `npm run bench`)
 * fits in five minutes on this 2-core machine; `full` (`npm run bench --
 * --full`) takes the sizes the issue names: 19,000 held agents, a 10,000
 * agent reconnect storm at the production bcrypt cost.
 */

export interface Profile {
  readonly name: 'quick' | 'full';
  /** Figure 1: fleet sizes at which memory is read (real 60 s heartbeat mode). */
  readonly memorySteps: readonly number[];
  /** Figure 2: agents and threats in flight per agent, and how long. */
  readonly ingest: { readonly agents: number; readonly window: number; readonly seconds: number };
  /** Figure 2's limit: the raw unnest insert, rows per statement and duration. */
  readonly rawInsert: { readonly batch: number; readonly seconds: number };
  /** Figure 3: offered threats per second, each for `seconds`. */
  readonly feed: {
    readonly agents: number;
    readonly rates: readonly number[];
    readonly seconds: number;
  };
  /** Figure 5 runs on a time-compressed daemon with this interval. */
  readonly compressedIntervalS: number;
  /** Figure 5: agents heartbeating, and the measured window. */
  readonly heartbeat: { readonly agents: number; readonly seconds: number };
  /**
   * Figure 4, on a real-time daemon: the storm runs twice: with `agents`
   * agents (bench cost 4), then with `productionCostAgents` agents whose
   * tokens are hashed at cost 10; each bounded by `timeoutS`.
   */
  readonly storm: {
    readonly agents: number;
    readonly productionCostAgents: number;
    readonly timeoutS: number;
  };
  /** Figure 7: later starts after the first. */
  readonly laterStarts: number;
}

export const quickProfile: Profile = Object.freeze({
  name: 'quick',
  memorySteps: [1_000, 2_000, 3_000],
  ingest: { agents: 500, window: 20, seconds: 8 },
  rawInsert: { batch: 1_000, seconds: 6 },
  feed: { agents: 200, rates: [250, 500, 1_000, 2_000], seconds: 5 },
  compressedIntervalS: 5,
  heartbeat: { agents: 2_000, seconds: 10 },
  storm: { agents: 2_000, productionCostAgents: 150, timeoutS: 50 },
  laterStarts: 2,
});

export const fullProfile: Profile = Object.freeze({
  name: 'full',
  memorySteps: [2_000, 5_000, 10_000, 15_000, 19_000],
  ingest: { agents: 1_000, window: 20, seconds: 30 },
  rawInsert: { batch: 1_000, seconds: 20 },
  feed: { agents: 400, rates: [250, 500, 1_000, 2_000, 4_000, 8_000], seconds: 15 },
  compressedIntervalS: 5,
  heartbeat: { agents: 10_000, seconds: 30 },
  storm: { agents: 10_000, productionCostAgents: 10_000, timeoutS: 600 },
  laterStarts: 3,
});
