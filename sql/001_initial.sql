-- 001: the initial schema of Citadel Archer.
-- Keys are UUIDs; threats and audit rows also carry a bigint sequence that
-- orders them and serves as the paging and feed cursor.

CREATE TABLE agents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  hostname text NOT NULL,
  machine_id text,
  -- 'machine:<machine_id>' when the agent sent one, else 'host:<hostname>'.
  identity text NOT NULL,
  ip_address inet,
  status text NOT NULL DEFAULT 'offline'
    CHECK (status IN ('active', 'inactive', 'offline')),
  last_heartbeat timestamptz,
  registered_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT agents_identity_key UNIQUE (identity)
);
CREATE INDEX agents_status_idx ON agents (status, hostname);

CREATE TABLE agent_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  agent_id uuid NOT NULL REFERENCES agents (id),
  token_hash text NOT NULL,
  issued_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  is_revoked boolean NOT NULL DEFAULT false,
  revoked_at timestamptz
);
CREATE INDEX agent_tokens_agent_idx ON agent_tokens (agent_id) WHERE NOT is_revoked;

CREATE TABLE enrollment_secrets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  secret_hash text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  max_uses integer CHECK (max_uses IS NULL OR max_uses > 0),
  uses integer NOT NULL DEFAULT 0,
  revoked_at timestamptz
);

CREATE TABLE admin_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
  token_hash text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz
);

CREATE TABLE threats (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq bigint GENERATED ALWAYS AS IDENTITY,
  agent_id uuid NOT NULL REFERENCES agents (id),
  report_id uuid NOT NULL,
  threat_type text NOT NULL,
  severity smallint NOT NULL CHECK (severity BETWEEN 1 AND 10),
  hostname text NOT NULL,
  title text NOT NULL,
  status text NOT NULL DEFAULT 'open'
    CHECK (status IN ('open', 'acknowledged', 'resolved')),
  detected_at timestamptz NOT NULL,
  reported_at timestamptz NOT NULL DEFAULT now(),
  acknowledged_at timestamptz,
  acknowledged_by text,
  resolved_at timestamptz,
  resolved_by text,
  resolution text
    CHECK (resolution IN ('true_positive', 'false_positive', 'duplicate')),
  note text,
  details jsonb NOT NULL DEFAULT '{}',
  CONSTRAINT threats_seq_key UNIQUE (seq),
  CONSTRAINT threats_report_key UNIQUE (agent_id, report_id)
);
CREATE INDEX threats_status_seq_idx ON threats (status, seq DESC);
CREATE INDEX threats_agent_status_seq_idx ON threats (agent_id, status, seq DESC);
CREATE INDEX threats_reported_at_idx ON threats (reported_at);

CREATE TABLE audit_logs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq bigint GENERATED ALWAYS AS IDENTITY,
  agent_id uuid,
  event_type text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
  actor text NOT NULL,
  action text NOT NULL,
  result text NOT NULL CHECK (result IN ('success', 'failure')),
  "timestamp" timestamptz NOT NULL DEFAULT now(),
  details jsonb NOT NULL DEFAULT '{}',
  CONSTRAINT audit_logs_seq_key UNIQUE (seq)
);
CREATE INDEX audit_logs_timestamp_idx ON audit_logs ("timestamp");
CREATE INDEX audit_logs_event_seq_idx ON audit_logs (event_type, seq DESC);
CREATE INDEX audit_logs_agent_seq_idx ON audit_logs (agent_id, seq DESC) WHERE agent_id IS NOT NULL;

-- The audit trail is append-only, enforced by the database for every role.
CREATE FUNCTION audit_logs_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_logs is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_logs_append_only
  BEFORE UPDATE OR DELETE ON audit_logs
  FOR EACH ROW EXECUTE FUNCTION audit_logs_refuse_change();

CREATE TRIGGER audit_logs_no_truncate
  BEFORE TRUNCATE ON audit_logs
  FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_refuse_change();
