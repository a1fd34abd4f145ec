-- Flow schedules (issue: delivery guarantees). One row per (instance, flow) that runs
-- on a schedule, kept in step with the instance by `scheduler::sync_instance`: only
-- enabled, deployed instances have rows. The scheduler claims a due row by moving
-- `next_run_ms` forward with a compare-and-set, so each fire time runs once.
--   next_run_ms  the next fire time; NULL when the cron fires no more
--   last_run_ms  when the row was last claimed
CREATE TABLE schedules (
    instance_id  TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    flow_key     TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL,
    next_run_ms  INTEGER,
    last_run_ms  INTEGER,
    PRIMARY KEY (instance_id, flow_key)
);
CREATE INDEX schedules_due ON schedules(next_run_ms) WHERE next_run_ms IS NOT NULL;
