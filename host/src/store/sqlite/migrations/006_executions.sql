-- Executions: one row per accepted trigger, written before the caller is answered.
-- The queue is this table: status `queued` rows wait for a worker.
CREATE TABLE executions (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    instance_id    TEXT NOT NULL,
    flow_key       TEXT NOT NULL,
    status         TEXT NOT NULL,
    synchronous    INTEGER NOT NULL,
    attempt        INTEGER NOT NULL,
    created_ms     INTEGER NOT NULL,
    started_ms     INTEGER,
    finished_ms    INTEGER,
    lease_until_ms INTEGER,
    failed_step    TEXT,
    error          TEXT,
    record         TEXT,
    parent_id      TEXT,
    replay_of      TEXT
);
CREATE INDEX executions_by_tenant ON executions(tenant_id, created_ms);
CREATE INDEX executions_by_instance ON executions(instance_id, flow_key, created_ms);
CREATE INDEX executions_queue ON executions(status, created_ms);

-- The trigger request of each execution, kept for replay and inspection.
CREATE TABLE execution_payloads (
    execution_id  TEXT PRIMARY KEY REFERENCES executions(id) ON DELETE CASCADE,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    query         TEXT NOT NULL,
    headers       TEXT NOT NULL,
    body          BLOB NOT NULL,
    received_ms   INTEGER NOT NULL
);

CREATE TABLE execution_logs (
    execution_id  TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    ts_ms         INTEGER NOT NULL,
    level         INTEGER NOT NULL,
    step          TEXT,
    message       TEXT NOT NULL,
    fields        TEXT,
    PRIMARY KEY (execution_id, seq)
);
