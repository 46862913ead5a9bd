-- 003: several daemons on one database.
--
-- PostgreSQL is the only thing the daemons share: these tables say which
-- daemon is alive and which one holds each agent's session, and the
-- triggers below make every threat insert and status change announce itself
-- with NOTIFY, in commit order, whoever wrote it.

-- One row per running daemon. A daemon renews its lease well before it
-- ends; the others sweep a daemon whose lease has expired (its agents go
-- offline, its session claims are dropped). `node` names the host, data
-- directory and listen address, so that a restarted daemon recognises the
-- rows of its own earlier life at once.
CREATE TABLE daemon_instances (
  id uuid PRIMARY KEY,
  node text NOT NULL,
  hostname text NOT NULL,
  pid integer NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  renewed_at timestamptz NOT NULL DEFAULT now(),
  lease_expires_at timestamptz NOT NULL
);
CREATE INDEX daemon_instances_lease_idx ON daemon_instances (lease_expires_at);
CREATE INDEX daemon_instances_node_idx ON daemon_instances (node);

-- The newest session of each agent: which daemon holds it. `claim` grows
-- with every new session, so of two sessions racing on two daemons the one
-- with the higher claim is the newer, wherever the news arrives first.
-- No foreign key to daemon_instances: a sweep drops both in one statement.
CREATE SEQUENCE agent_session_claim_seq;
CREATE TABLE agent_sessions (
  agent_id uuid PRIMARY KEY REFERENCES agents (id),
  daemon_id uuid NOT NULL,
  session_id uuid NOT NULL,
  claim bigint NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_sessions_daemon_idx ON agent_sessions (daemon_id);

-- Status changes get a cursor of their own, as inserts have `seq`.
CREATE SEQUENCE threat_update_seq;
ALTER TABLE threats ADD COLUMN update_seq bigint;
CREATE UNIQUE INDEX threats_update_seq_idx ON threats (update_seq)
  WHERE update_seq IS NOT NULL;

-- Cursors are only safe to follow if rows become visible in cursor order.
-- Two daemons inserting at once could commit seq 11 before seq 10; a reader
-- that saw 11 and moved its cursor past 10 would never see 10. So every
-- insert (and every update) statement first takes a transaction advisory
-- lock: writers of threats commit one after another, each with higher
-- numbers than the last. The keys are arbitrary constants.
CREATE FUNCTION threats_take_order_lock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM pg_advisory_xact_lock(7413052301);
  ELSE
    PERFORM pg_advisory_xact_lock(7413052302);
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER threats_insert_order
  BEFORE INSERT ON threats
  FOR EACH STATEMENT EXECUTE FUNCTION threats_take_order_lock();

CREATE TRIGGER threats_update_order
  BEFORE UPDATE ON threats
  FOR EACH STATEMENT EXECUTE FUNCTION threats_take_order_lock();

CREATE FUNCTION threats_stamp_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.update_seq := nextval('threat_update_seq');
  RETURN NEW;
END;
$$;

CREATE TRIGGER threats_update_stamp
  BEFORE UPDATE ON threats
  FOR EACH ROW EXECUTE FUNCTION threats_stamp_update();

-- The notifications carry only the highest cursor of the statement (a few
-- bytes, far below NOTIFY's 8000-byte limit); listeners fetch the rows.
CREATE FUNCTION threats_notify_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  top bigint;
BEGIN
  SELECT max(seq) INTO top FROM inserted_threats;
  IF top IS NOT NULL THEN
    PERFORM pg_notify('citadel_threats', json_build_object('seq', top)::text);
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER threats_inserted_notify
  AFTER INSERT ON threats
  REFERENCING NEW TABLE AS inserted_threats
  FOR EACH STATEMENT EXECUTE FUNCTION threats_notify_inserted();

CREATE FUNCTION threats_notify_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  top bigint;
BEGIN
  SELECT max(update_seq) INTO top FROM updated_threats;
  IF top IS NOT NULL THEN
    PERFORM pg_notify('citadel_threat_updates', json_build_object('seq', top)::text);
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER threats_updated_notify
  AFTER UPDATE ON threats
  REFERENCING NEW TABLE AS updated_threats
  FOR EACH STATEMENT EXECUTE FUNCTION threats_notify_updated();
