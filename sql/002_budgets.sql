-- 002: budget state that outlives a process and is shared by daemons.

-- Per-agent sliding-window logs (wall-clock epoch milliseconds), written
-- through the write-behind path and read back when the agent's session opens
-- on any daemon, so budgets survive restarts and travel with the agent.
CREATE TABLE agent_budgets (
  agent_id uuid PRIMARY KEY REFERENCES agents (id),
  state jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per-IP budget events (enrollment), counted in the database so that the
-- budget holds across every daemon sharing it.
CREATE TABLE ip_budget_events (
  scope text NOT NULL,
  ip inet NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ip_budget_events_key_idx ON ip_budget_events (scope, ip, at);
