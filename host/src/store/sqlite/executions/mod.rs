//! Executions on SQLite: `queue` is the durable queue ([`ExecutionQueue`]), `archive`
//! what is kept of executions ([`ExecutionArchive`]); both read the same `executions`
//! rows, through the columns and row mapping here.
//!
//! [`ExecutionQueue`]: crate::store::ExecutionQueue
//! [`ExecutionArchive`]: crate::store::ExecutionArchive

use deadpool_sqlite::rusqlite::{self, Row};

use crate::store::executions::{Execution, ExecutionStatus};

mod archive;
mod queue;
#[cfg(test)]
mod test_support;

const COLUMNS: &str =
    "id, tenant_id, instance_id, flow_key, status, synchronous, attempt, created_ms, started_ms,
     finished_ms, failed_step, error, parent_id, replay_of, trigger, run_after_ms, fifo,
     dedupe_id, request_id, crash_requeues, duplicate_of";

fn execution(row: &Row<'_>) -> rusqlite::Result<Execution> {
    let status: String = row.get(4)?;
    Ok(Execution {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        instance_id: row.get(2)?,
        flow_key: row.get(3)?,
        status: ExecutionStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Text,
                format!("status `{status}`").into(),
            )
        })?,
        synchronous: row.get(5)?,
        attempt: row.get(6)?,
        created_ms: row.get(7)?,
        started_ms: row.get(8)?,
        finished_ms: row.get(9)?,
        failed_step: row.get(10)?,
        error: row.get(11)?,
        parent_id: row.get(12)?,
        replay_of: row.get(13)?,
        trigger: row.get(14)?,
        run_after_ms: row.get(15)?,
        fifo: row.get(16)?,
        dedupe_id: row.get(17)?,
        request_id: row.get(18)?,
        crash_requeues: row.get(19)?,
        duplicate_of: row.get(20)?,
    })
}
