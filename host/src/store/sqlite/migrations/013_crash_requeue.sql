-- Poison executions (issue 10, finding 3): an execution left `running` by a process
-- that died is queued again with this count raised, not its (flow retry) attempt;
-- past the server's cap it fails with `host-crash-loop` instead of running again, and
-- each requeue waits longer (`run_after_ms`), so a restart never re-runs it at once
-- and without limit.
ALTER TABLE executions ADD COLUMN crash_requeues INTEGER NOT NULL DEFAULT 0;
