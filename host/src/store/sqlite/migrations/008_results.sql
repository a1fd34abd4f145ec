-- Step results too large for an execution's record, kept by reference (the flow
-- engine's ResultStore); deleted with their execution.
CREATE TABLE execution_results (
    reference     TEXT PRIMARY KEY,
    execution_id  TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    step          TEXT NOT NULL,
    data          BLOB NOT NULL
);
CREATE INDEX execution_results_by_execution ON execution_results(execution_id);
