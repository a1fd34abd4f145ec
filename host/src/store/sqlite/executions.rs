//! [`ExecutionStore`] on SQLite. Claiming is one `UPDATE ... RETURNING` on the oldest
//! queued row, so two workers never take the same execution.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, params};

use super::{SqliteStore, sql};
use crate::store::StoreError;
use crate::store::executions::{
    Execution, ExecutionFilter, ExecutionStatus, ExecutionStore, LogLine, Payload,
};

const COLUMNS: &str =
    "id, tenant_id, instance_id, flow_key, status, synchronous, attempt, created_ms, started_ms,
     finished_ms, failed_step, error, parent_id, replay_of";

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
    })
}

fn pairs_json(pairs: &[(String, String)]) -> Result<String, StoreError> {
    serde_json::to_string(pairs).map_err(|err| StoreError::Backend(err.to_string()))
}

#[async_trait]
impl ExecutionStore for SqliteStore {
    async fn insert_execution(
        &self,
        execution: &Execution,
        payload: &Payload,
    ) -> Result<(), StoreError> {
        let execution = execution.clone();
        let payload = payload.clone();
        let (query, headers) = (pairs_json(&payload.query)?, pairs_json(&payload.headers)?);
        self.interact(move |connection| {
            let transaction = connection.transaction().map_err(sql)?;
            transaction
                .execute(
                    &format!("INSERT INTO executions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
                    params![
                        execution.id,
                        execution.tenant_id,
                        execution.instance_id,
                        execution.flow_key,
                        execution.status.as_str(),
                        execution.synchronous,
                        execution.attempt,
                        execution.created_ms,
                        execution.started_ms,
                        execution.finished_ms,
                        execution.failed_step,
                        execution.error,
                        execution.parent_id,
                        execution.replay_of,
                    ],
                )
                .map_err(sql)?;
            transaction
                .execute(
                    "INSERT INTO execution_payloads (execution_id, method, path, query, headers, body, received_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![execution.id, payload.method, payload.path, query, headers, payload.body, payload.received_ms],
                )
                .map_err(sql)?;
            transaction.commit().map_err(sql)
        })
        .await
    }

    async fn claim_next(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<Execution>, StoreError> {
        self.interact(move |connection| {
            connection
                .query_row(
                    &format!(
                        "UPDATE executions SET status = 'running', started_ms = ?1, lease_until_ms = ?2
                         WHERE id = (SELECT id FROM executions WHERE status = 'queued' ORDER BY created_ms, id LIMIT 1)
                         RETURNING {COLUMNS}"
                    ),
                    params![now_ms, lease_until_ms],
                    execution,
                )
                .optional()
                .map_err(sql)
        })
        .await
    }

    async fn start_execution(
        &self,
        id: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        self.interact(move |connection| {
            connection
                .execute(
                    "UPDATE executions SET status = 'running', started_ms = ?2, lease_until_ms = ?3 WHERE id = ?1",
                    params![id, now_ms, lease_until_ms],
                )
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn finish_execution(
        &self,
        id: &str,
        status: ExecutionStatus,
        finished_ms: i64,
        failed_step: Option<&str>,
        error: Option<&str>,
        record: &str,
    ) -> Result<(), StoreError> {
        let (id, failed_step, error, record) = (
            id.to_string(),
            failed_step.map(str::to_string),
            error.map(str::to_string),
            record.to_string(),
        );
        self.interact(move |connection| {
            connection
                .execute(
                    "UPDATE executions SET status = ?2, finished_ms = ?3, failed_step = ?4, error = ?5, record = ?6,
                     lease_until_ms = NULL WHERE id = ?1",
                    params![id, status.as_str(), finished_ms, failed_step, error, record],
                )
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn append_logs(&self, id: &str, lines: &[LogLine]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let (id, lines) = (id.to_string(), lines.to_vec());
        self.interact(move |connection| {
            let transaction = connection.transaction().map_err(sql)?;
            {
                let mut statement = transaction
                    .prepare_cached(
                        "INSERT OR IGNORE INTO execution_logs (execution_id, seq, ts_ms, level, step, message, fields)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(sql)?;
                for line in &lines {
                    statement
                        .execute(params![id, line.seq, line.ts_ms, line.level, line.step, line.message, line.fields])
                        .map_err(sql)?;
                }
            }
            transaction.commit().map_err(sql)
        })
        .await
    }

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

    async fn requeue_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.interact(move |connection| {
            let requeued = connection
                .execute(
                    "UPDATE executions SET status = 'queued', attempt = attempt + 1, started_ms = NULL, lease_until_ms = NULL
                     WHERE status = 'running' AND lease_until_ms IS NOT NULL AND lease_until_ms < ?1",
                    [now_ms],
                )
                .map_err(sql)?;
            Ok(requeued as u64)
        })
        .await
    }

    async fn delete_executions_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.interact(move |connection| {
            let deleted = connection
                .execute(
                    "DELETE FROM executions WHERE created_ms < ?1 AND status IN ('succeeded', 'failed')",
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
        self.interact(move |connection| {
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
mod tests {
    use super::*;

    fn row(id: &str, status: ExecutionStatus, created_ms: i64) -> Execution {
        Execution {
            id: id.into(),
            tenant_id: "t".into(),
            instance_id: "i".into(),
            flow_key: "f".into(),
            status,
            synchronous: false,
            attempt: 1,
            created_ms,
            started_ms: None,
            finished_ms: None,
            failed_step: None,
            error: None,
            parent_id: None,
            replay_of: None,
        }
    }

    fn payload() -> Payload {
        Payload {
            method: "POST".into(),
            path: String::new(),
            query: vec![],
            headers: vec![],
            body: b"{}".to_vec(),
            received_ms: 0,
        }
    }

    #[tokio::test]
    async fn retention_deletes_only_old_finished_executions_with_their_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        store
            .insert_execution(
                &row("old-done", ExecutionStatus::Succeeded, 1_000),
                &payload(),
            )
            .await
            .unwrap();
        store
            .insert_execution(
                &row("old-queued", ExecutionStatus::Queued, 1_000),
                &payload(),
            )
            .await
            .unwrap();
        store
            .insert_execution(&row("new-done", ExecutionStatus::Failed, 5_000), &payload())
            .await
            .unwrap();
        let line = LogLine {
            seq: 1,
            ts_ms: 1_000,
            level: 2,
            step: None,
            message: "m".into(),
            fields: None,
        };
        store.append_logs("old-done", &[line]).await.unwrap();
        let reference = store.put_result("old-done", "s", b"[1]").await.unwrap();

        assert_eq!(store.delete_executions_before(2_000).await.unwrap(), 1);
        assert!(
            store
                .get_execution("t", "old-done")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .execution_payload("t", "old-done")
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.get_result(None, &reference).await.unwrap().is_none());
        let orphans: i64 = store
            .interact(|c| {
                c.query_row("SELECT count(*) FROM execution_logs", [], |row| row.get(0))
                    .map_err(sql)
            })
            .await
            .unwrap();
        assert_eq!(orphans, 0, "logs are deleted with their execution");
        // Queued work is never dropped by retention, nor newer executions.
        assert!(
            store
                .get_execution("t", "old-queued")
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .get_execution("t", "new-done")
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn claiming_takes_the_oldest_once_and_expired_leases_return() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        store
            .insert_execution(&row("b", ExecutionStatus::Queued, 2), &payload())
            .await
            .unwrap();
        store
            .insert_execution(&row("a", ExecutionStatus::Queued, 1), &payload())
            .await
            .unwrap();
        let first = store.claim_next(10, 100).await.unwrap().unwrap();
        assert_eq!(
            (first.id.as_str(), first.status),
            ("a", ExecutionStatus::Running)
        );
        assert_eq!(store.claim_next(10, 100).await.unwrap().unwrap().id, "b");
        assert!(store.claim_next(10, 100).await.unwrap().is_none());
        assert_eq!(store.requeue_expired(50).await.unwrap(), 0);
        assert_eq!(store.requeue_expired(101).await.unwrap(), 2);
        let again = store.claim_next(200, 300).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempt), ("a", 2));
    }
}
