-- Issue 12 ("Edges"):
--   dedupe_held   1 once the execution's trigger accepted its request. Only such an
--                 execution holds its FIFO dedupe id within the window: a request the
--                 trigger refused (a forgery carrying a real delivery id) takes nothing
--                 from the genuine delivery that follows it.
--   duplicate_of  a repeat dropped within the window (status `duplicate`) points at the
--                 execution holding its dedupe id; it stays listable and replayable.
-- New statuses: `rejected` (the trigger refused the request), `duplicate`.
ALTER TABLE executions ADD COLUMN dedupe_held INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN duplicate_of TEXT;
-- Before, every execution with a dedupe id held it; those that ran keep holding it.
UPDATE executions SET dedupe_held = 1
    WHERE dedupe_id IS NOT NULL AND status IN ('succeeded', 'failed');
