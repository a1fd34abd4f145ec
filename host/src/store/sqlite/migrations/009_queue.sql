-- The queue's policies on the executions table (issue: delivery guarantees).
--   trigger       what started the execution: webhook, schedule, replay, flow, event
--   run_after_ms  a queued row is not claimed before this (retries wait here)
--   fifo          the row belongs to its (instance, flow) FIFO queue: only the head
--                 is `queued`, the rest are `waiting` until the head ends
--   dedupe_id     FIFO dedupe id read from the payload
--   request_id    unique request id (a newer one cancels pending retries)
-- New statuses: `waiting` (behind a FIFO head), `skipped` (singleton), `cancelled`.
ALTER TABLE executions ADD COLUMN trigger TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE executions ADD COLUMN run_after_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN fifo INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN dedupe_id TEXT;
ALTER TABLE executions ADD COLUMN request_id TEXT;
UPDATE executions SET run_after_ms = created_ms;

DROP INDEX executions_queue;
-- Claiming: ready rows per tenant, round robin across tenants.
CREATE INDEX executions_ready ON executions(status, tenant_id, run_after_ms);
-- FIFO heads, singleton checks, retry cancellation.
CREATE INDEX executions_flow_status ON executions(instance_id, flow_key, status);
CREATE INDEX executions_dedupe ON executions(instance_id, flow_key, dedupe_id)
    WHERE dedupe_id IS NOT NULL;
CREATE INDEX executions_request ON executions(instance_id, flow_key, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX executions_replays ON executions(replay_of) WHERE replay_of IS NOT NULL;
