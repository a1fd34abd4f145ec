//! What is kept of executions on SQLite ([`ExecutionArchive`]): the stored rows and
//! their filtered listing, records, log lines, trigger requests and large results,
//! and the retention that deletes finished executions with all of it.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{Connection, OptionalExtension, params};

use super::{COLUMNS, execution};
use crate::store::StoreError;
use crate::store::executions::{
    Execution, ExecutionArchive, ExecutionFilter, ExecutionStatus, LogLine, Payload,
};
use crate::store::sqlite::{SqliteStore, sql};

/// Appends `lines` after the lines earlier runs of the execution wrote (the caller
/// numbers its lines from 1). Runs in the caller's transaction, which must be
/// IMMEDIATE: it reads before it writes, and a deferred transaction that another
/// writer overtook between the two fails at once with SQLITE_BUSY instead of waiting
/// (busy_timeout does not apply to that upgrade); the store's writer's transactions are.
pub(super) fn append_logs_in(
    transaction: &Connection,
    id: &str,
    lines: &[LogLine],
) -> Result<(), StoreError> {
    if lines.is_empty() {
        return Ok(());
    }
    // A retry or a re-run after a crash appends after the earlier runs' lines.
    let base: i64 = transaction
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM execution_logs WHERE execution_id = ?1")
        .map_err(sql)?
        .query_row([id], |row| row.get(0))
        .map_err(sql)?;
    let mut statement = transaction
        .prepare_cached(
            "INSERT OR IGNORE INTO execution_logs (execution_id, seq, ts_ms, level, step, message, fields)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(sql)?;
    for line in lines {
        statement
            .execute(params![
                id,
                base + line.seq,
                line.ts_ms,
                line.level,
                line.step,
                line.message,
                line.fields
            ])
            .map_err(sql)?;
    }
    Ok(())
}

#[async_trait]
impl ExecutionArchive for SqliteStore {
    async fn get_execution(&self, tenant: &str, id: &str) -> Result<Option<Execution>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| {
            connection
                .query_row(
                    &format!("SELECT {COLUMNS} FROM executions WHERE tenant_id = ?1 AND id = ?2"),
                    params![tenant, id],
                    execution,
                )
                .optional()
                .map_err(sql)
        })
        .await
    }

    async fn execution_record(&self, tenant: &str, id: &str) -> Result<Option<String>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| {
            connection
                .query_row(
                    "SELECT record FROM executions WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, id],
                    |row| row.get::<_, Option<String>>(0),
                )
                .optional()
                .map(Option::flatten)
                .map_err(sql)
        })
        .await
    }

    async fn list_executions(
        &self,
        tenant: &str,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>, StoreError> {
        let tenant = tenant.to_string();
        let filter = filter.clone();
        self.interact(move |connection| {
            let (before_ms, before_id) = match &filter.before {
                Some((ms, id)) => (Some(*ms), Some(id.clone())),
                None => (None, None),
            };
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM executions
                     WHERE tenant_id = ?1
                       AND (?2 IS NULL OR instance_id = ?2)
                       AND (?3 IS NULL OR flow_key = ?3)
                       AND (?4 IS NULL OR status = ?4)
                       AND (?5 IS NULL OR created_ms >= ?5)
                       AND (?6 IS NULL OR created_ms < ?6)
                       AND (?7 IS NULL OR created_ms < ?7 OR (created_ms = ?7 AND id < ?8))
                       AND (?10 = 0 OR (replay_of IS NULL AND NOT EXISTS (
                             SELECT 1 FROM executions r
                             WHERE r.replay_of = executions.id AND r.status = 'succeeded')))
                       AND (?11 IS NULL OR trigger = ?11)
                     ORDER BY created_ms DESC, id DESC
                     LIMIT ?9"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map(
                    params![
                        tenant,
                        filter.instance_id,
                        filter.flow_key,
                        filter.status.map(ExecutionStatus::as_str),
                        filter.since_ms,
                        filter.until_ms,
                        before_ms,
                        before_id,
                        i64::try_from(filter.limit).unwrap_or(i64::MAX),
                        filter.unreplayed,
                        filter.trigger,
                    ],
                    execution,
                )
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    async fn execution_logs(
        &self,
        tenant: &str,
        id: &str,
        min_level: i64,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT l.seq, l.ts_ms, l.level, l.step, l.message, l.fields
                     FROM execution_logs l JOIN executions e ON e.id = l.execution_id
                     WHERE e.tenant_id = ?1 AND l.execution_id = ?2 AND l.level >= ?3 AND l.seq > ?4
                     ORDER BY l.seq LIMIT ?5",
                )
                .map_err(sql)?;
            let rows = statement
                .query_map(
                    params![
                        tenant,
                        id,
                        min_level,
                        after_seq,
                        i64::try_from(limit).unwrap_or(i64::MAX)
                    ],
                    |row| {
                        Ok(LogLine {
                            seq: row.get(0)?,
                            ts_ms: row.get(1)?,
                            level: row.get(2)?,
                            step: row.get(3)?,
                            message: row.get(4)?,
                            fields: row.get(5)?,
                        })
                    },
                )
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    async fn execution_payload(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Payload>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        let row = self
            .interact(move |connection| {
                connection
                    .query_row(
                        "SELECT p.method, p.path, p.query, p.headers, p.body, p.received_ms
                         FROM execution_payloads p JOIN executions e ON e.id = p.execution_id
                         WHERE e.tenant_id = ?1 AND p.execution_id = ?2",
                        params![tenant, id],
                        |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                                row.get::<_, String>(3)?,
                                row.get::<_, Vec<u8>>(4)?,
                                row.get::<_, i64>(5)?,
                            ))
                        },
                    )
                    .optional()
                    .map_err(sql)
            })
            .await?;
        let Some((method, path, query, headers, body, received_ms)) = row else {
            return Ok(None);
        };
        let parse = |text: &str| {
            serde_json::from_str::<Vec<(String, String)>>(text)
                .map_err(|err| StoreError::Backend(err.to_string()))
        };
        Ok(Some(Payload {
            method,
            path,
            query: parse(&query)?,
            headers: parse(&headers)?,
            body,
            received_ms,
        }))
    }

    async fn append_logs(&self, id: &str, lines: &[LogLine]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let (id, lines) = (id.to_string(), lines.to_vec());
        self.write(move |connection| append_logs_in(connection, &id, &lines))
            .await
    }

    async fn delete_executions_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.interact(move |connection| {
            let deleted = connection
                .execute(
                    "DELETE FROM executions
                     WHERE created_ms < ?1 AND status IN ('succeeded', 'failed', 'skipped', 'cancelled', 'rejected', 'duplicate')",
                    [cutoff_ms],
                )
                .map_err(sql)?;
            Ok(deleted as u64)
        })
        .await
    }

    async fn put_result(
        &self,
        execution_id: &str,
        step: &str,
        data: &[u8],
    ) -> Result<String, StoreError> {
        let reference = format!("{execution_id}/{step}/{}", crate::store::new_id());
        let (row, execution_id, step, data) = (
            reference.clone(),
            execution_id.to_string(),
            step.to_string(),
            data.to_vec(),
        );
        self.write(move |connection| {
            connection
                .execute(
                    "INSERT INTO execution_results (reference, execution_id, step, data) VALUES (?1, ?2, ?3, ?4)",
                    params![row, execution_id, step, data],
                )
                .map_err(sql)?;
            Ok(())
        })
        .await?;
        Ok(reference)
    }

    async fn get_result(
        &self,
        tenant: Option<&str>,
        reference: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (tenant, reference) = (tenant.map(str::to_string), reference.to_string());
        self.interact(move |connection| {
            connection
                .query_row(
                    "SELECT r.data FROM execution_results r JOIN executions e ON e.id = r.execution_id
                     WHERE (?1 IS NULL OR e.tenant_id = ?1) AND r.reference = ?2",
                    params![tenant, reference],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
