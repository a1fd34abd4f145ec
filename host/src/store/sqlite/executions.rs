//! [`ExecutionStore`] on SQLite: the durable queue. Claiming is one
//! `UPDATE ... RETURNING` per row, so two workers never take the same execution;
//! tenants take turns; FIFO, dedupe, singleton and retry cancellation are applied in
//! the transaction that writes the row.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, Row, params};

use super::{SqliteStore, sql};
use crate::store::StoreError;
use crate::store::executions::{
    CrashPolicy, EnqueueOutcome, EnqueuePolicy, Execution, ExecutionFilter, ExecutionStatus,
    ExecutionStore, Finish, HOST_CRASH_LOOP, INTERRUPTED, LogLine, Payload, Requeued,
};

const COLUMNS: &str =
    "id, tenant_id, instance_id, flow_key, status, synchronous, attempt, created_ms, started_ms,
     finished_ms, failed_step, error, parent_id, replay_of, trigger, run_after_ms, fifo,
     dedupe_id, request_id, crash_requeues, duplicate_of";

/// The tenant whose execution was claimed last: the next claim starts after it.
/// Kept in memory: after a restart the turn starts from the first tenant again.
static LAST_TENANT: Mutex<Option<String>> = Mutex::new(None);

// Statements on the webhook and queue hot paths are `prepare_cached`: parsing and
// planning them again on every call was a visible share of the server's CPU.

fn insert_row(
    transaction: &Connection,
    execution: &Execution,
    status: ExecutionStatus,
    payload: &Payload,
    lease_until_ms: Option<i64>,
) -> Result<(), StoreError> {
    let (query, headers) = (pairs_json(&payload.query)?, pairs_json(&payload.headers)?);
    transaction
        .prepare_cached(&format!(
            "INSERT INTO executions ({COLUMNS}, lease_until_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)"
        ))
        .map_err(sql)?
        .execute(params![
                execution.id,
                execution.tenant_id,
                execution.instance_id,
                execution.flow_key,
                status.as_str(),
                execution.synchronous,
                execution.attempt,
                execution.created_ms,
                execution.started_ms,
                execution.finished_ms,
                execution.failed_step,
                execution.error,
                execution.parent_id,
                execution.replay_of,
                execution.trigger,
                execution.run_after_ms,
                execution.fifo,
                execution.dedupe_id,
                execution.request_id,
                execution.crash_requeues,
                execution.duplicate_of,
                lease_until_ms,
            ])
        .map_err(sql)?;
    transaction
        .prepare_cached(
            "INSERT INTO execution_payloads (execution_id, method, path, query, headers, body, received_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(sql)?
        .execute(params![execution.id, payload.method, payload.path, query, headers, payload.body, payload.received_ms])
        .map_err(sql)?;
    Ok(())
}

/// Makes the oldest waiting execution of a FIFO queue its head, unless the queue
/// still has a head (queued, perhaps for a retry, or running).
fn promote_fifo(
    transaction: &Connection,
    instance_id: &str,
    flow_key: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    transaction
        .prepare_cached(
            "UPDATE executions SET status = 'queued', run_after_ms = MAX(run_after_ms, ?3)
             WHERE rowid = (SELECT rowid FROM executions
                            WHERE instance_id = ?1 AND flow_key = ?2 AND status = 'waiting'
                            ORDER BY rowid LIMIT 1)
               AND NOT EXISTS (SELECT 1 FROM executions
                               WHERE instance_id = ?1 AND flow_key = ?2 AND fifo = 1
                                 AND status IN ('queued', 'running'))",
        )
        .map_err(sql)?
        .execute(params![instance_id, flow_key, now_ms])
        .map_err(sql)?;
    Ok(())
}

/// Appends `lines` after the lines earlier runs of the execution wrote (the caller
/// numbers its lines from 1). Runs in the caller's transaction, which must be
/// IMMEDIATE: it reads before it writes, and a deferred transaction that another
/// writer overtook between the two fails at once with SQLITE_BUSY instead of waiting
/// (busy_timeout does not apply to that upgrade); the store's writer's transactions are.
fn append_logs_in(transaction: &Connection, id: &str, lines: &[LogLine]) -> Result<(), StoreError> {
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

/// Records how a run ended: the execution ends (and a FIFO queue gets its next head),
/// or goes back to the queue for its retry. A run whose trigger accepted the request
/// makes the execution hold its dedupe id, through its retries too.
fn finish_in(transaction: &Connection, id: &str, finish: &Finish) -> Result<(), StoreError> {
    if finish.holds_dedupe {
        transaction
            .prepare_cached(
                "UPDATE executions SET dedupe_held = 1 WHERE id = ?1 AND dedupe_id IS NOT NULL",
            )
            .map_err(sql)?
            .execute([id])
            .map_err(sql)?;
    }
    let ended: Option<(String, String, bool)> = match finish.retry_at_ms {
        Some(retry_at) => {
            transaction
                .prepare_cached(
                    "UPDATE executions SET status = 'queued', attempt = attempt + 1, run_after_ms = ?2,
                       failed_step = ?3, error = ?4, record = ?5, started_ms = NULL,
                       lease_until_ms = NULL
                     WHERE id = ?1",
                )
                .map_err(sql)?
                .execute(params![id, retry_at, finish.failed_step, finish.error, finish.record])
                .map_err(sql)?;
            None
        }
        None => transaction
            .prepare_cached(
                "UPDATE executions SET status = ?2, finished_ms = ?3, failed_step = ?4, error = ?5,
                   record = ?6, lease_until_ms = NULL
                 WHERE id = ?1
                 RETURNING instance_id, flow_key, fifo",
            )
            .map_err(sql)?
            .query_row(
                params![
                    id,
                    finish.status.as_str(),
                    finish.finished_ms,
                    finish.failed_step,
                    finish.error,
                    finish.record
                ],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(sql)?,
    };
    if let Some((instance_id, flow_key, true)) = ended {
        promote_fifo(transaction, &instance_id, &flow_key, finish.finished_ms)?;
    }
    Ok(())
}

/// The execution of `execution`'s instance and flow, other than itself, created at or
/// after `since`, that holds `dedupe_id` (its trigger accepted it).
fn dedupe_holder(
    transaction: &Connection,
    execution: &Execution,
    dedupe_id: &str,
    since: i64,
) -> Result<Option<String>, StoreError> {
    transaction
        .prepare_cached(
            "SELECT id FROM executions
             WHERE instance_id = ?1 AND flow_key = ?2 AND dedupe_id = ?3 AND created_ms >= ?4
               AND dedupe_held = 1 AND id != ?5
             ORDER BY created_ms LIMIT 1",
        )
        .map_err(sql)?
        .query_row(
            params![
                execution.instance_id,
                execution.flow_key,
                dedupe_id,
                since,
                execution.id
            ],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql)
}

fn duplicate_error(holder: &str) -> String {
    format!(
        "duplicate: execution {holder} holds this request's dedupe id within the dedupe window; replay this execution to run it anyway"
    )
}

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

fn pairs_json(pairs: &[(String, String)]) -> Result<String, StoreError> {
    serde_json::to_string(pairs).map_err(|err| StoreError::Backend(err.to_string()))
}

#[async_trait]
impl ExecutionStore for SqliteStore {
    async fn insert_execution(
        &self,
        execution: &Execution,
        payload: &Payload,
        lease_until_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let (execution, payload) = (execution.clone(), payload.clone());
        self.write(move |connection| {
            insert_row(
                connection,
                &execution,
                execution.status,
                &payload,
                lease_until_ms,
            )
        })
        .await
    }

    async fn enqueue_execution(
        &self,
        execution: &Execution,
        payload: &Payload,
        policy: &EnqueuePolicy,
    ) -> Result<EnqueueOutcome, StoreError> {
        let (execution, payload, policy) = (execution.clone(), payload.clone(), policy.clone());
        self.write(move |connection| {
            // The writer's transaction is IMMEDIATE: the checks below and the insert
            // see and leave one state, even with another connection writing.
            let transaction = connection;
            if let (Some(dedupe_id), Some(since)) = (&execution.dedupe_id, policy.dedupe_since_ms) {
                // Only an execution whose trigger accepted the request holds the id:
                // one still queued has not decided yet (the repeat is queued behind it
                // and checked when its turn comes), one refused never held it.
                if let Some(existing_id) =
                    dedupe_holder(transaction, &execution, dedupe_id, since)?
                {
                    let row = Execution {
                        finished_ms: Some(execution.created_ms),
                        error: Some(duplicate_error(&existing_id)),
                        duplicate_of: Some(existing_id.clone()),
                        ..execution.clone()
                    };
                    insert_row(
                        transaction,
                        &row,
                        ExecutionStatus::Duplicate,
                        &payload,
                        None,
                    )?;
                    return Ok(EnqueueOutcome::Duplicate { existing_id });
                }
            }
            let mut cancelled = 0;
            if let Some(request_id) = &execution.request_id {
                // Pending retries of older requests with this id: the newer request
                // supersedes them. Runs in progress finish; their retries are not made.
                let mut statement = transaction
                    .prepare_cached(
                        "UPDATE executions SET status = 'cancelled', finished_ms = ?4,
                           error = 'cancelled: a newer request with the same request id arrived (' || ?5 || ')'
                         WHERE instance_id = ?1 AND flow_key = ?2 AND request_id = ?3
                           AND status = 'queued' AND attempt > 1
                         RETURNING fifo",
                    )
                    .map_err(sql)?;
                let fifo: Vec<bool> = statement
                    .query_map(
                        params![
                            execution.instance_id,
                            execution.flow_key,
                            request_id,
                            execution.created_ms,
                            execution.id
                        ],
                        |row| row.get(0),
                    )
                    .map_err(sql)?
                    .collect::<Result<_, _>>()
                    .map_err(sql)?;
                drop(statement);
                cancelled = fifo.len() as u64;
                if fifo.contains(&true) {
                    promote_fifo(
                        transaction,
                        &execution.instance_id,
                        &execution.flow_key,
                        execution.created_ms,
                    )?;
                }
            }
            let unfinished = |fifo_only: bool| -> Result<bool, StoreError> {
                transaction
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM executions
                                        WHERE instance_id = ?1 AND flow_key = ?2
                                          AND status IN ('queued', 'waiting', 'running')
                                          AND (?3 = 0 OR fifo = 1))",
                    )
                    .map_err(sql)?
                    .query_row(
                        params![execution.instance_id, execution.flow_key, fifo_only],
                        |row| row.get(0),
                    )
                    .map_err(sql)
            };
            let mut row = execution.clone();
            let status = if policy.singleton && unfinished(false)? {
                row.finished_ms = Some(execution.created_ms);
                row.error = Some(
                    "skipped: the previous execution of this singleton flow was still running"
                        .into(),
                );
                ExecutionStatus::Skipped
            } else if execution.fifo && unfinished(true)? {
                ExecutionStatus::Waiting
            } else {
                execution.status
            };
            insert_row(transaction, &row, status, &payload, None)?;
            Ok(EnqueueOutcome::Inserted { status, cancelled })
        })
        .await
    }

    async fn claim_next(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<Execution>, StoreError> {
        let after = LAST_TENANT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        let claimed = self
            .write(move |connection| {
                // The next tenant (in id order, wrapping around) with a ready execution.
                let next_tenant = |after: &str| {
                    connection
                        .prepare_cached(
                            "SELECT tenant_id FROM executions
                             WHERE status = 'queued' AND tenant_id > ?1 AND run_after_ms <= ?2
                             ORDER BY tenant_id LIMIT 1",
                        )
                        .map_err(sql)?
                        .query_row(params![after, now_ms], |row| row.get::<_, String>(0))
                        .optional()
                        .map_err(sql)
                };
                // Another connection may take that tenant's last ready row between the
                // two statements: then look again (a few times; the caller polls anyway).
                for _ in 0..3 {
                    let tenant = match next_tenant(&after)? {
                        Some(tenant) => tenant,
                        None if !after.is_empty() => match next_tenant("")? {
                            Some(tenant) => tenant,
                            None => return Ok(None),
                        },
                        None => return Ok(None),
                    };
                    let claimed = connection
                        .prepare_cached(&format!(
                                "UPDATE executions SET status = 'running', started_ms = ?1, lease_until_ms = ?2
                                 WHERE rowid = (SELECT rowid FROM executions
                                                WHERE status = 'queued' AND tenant_id = ?3 AND run_after_ms <= ?1
                                                ORDER BY run_after_ms, rowid LIMIT 1)
                                   AND status = 'queued'
                                 RETURNING {COLUMNS}"
                        ))
                        .map_err(sql)?
                        .query_row(params![now_ms, lease_until_ms, tenant], execution)
                        .optional()
                        .map_err(sql)?;
                    if claimed.is_some() {
                        return Ok(claimed);
                    }
                }
                Ok(None)
            })
            .await?;
        if let Some(claimed) = &claimed {
            *LAST_TENANT.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(claimed.tenant_id.clone());
        }
        Ok(claimed)
    }

    async fn drop_if_duplicate(
        &self,
        id: &str,
        dedupe_since_ms: i64,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let id = id.to_string();
        self.write(move |connection| {
            let execution = connection
                .prepare_cached(&format!("SELECT {COLUMNS} FROM executions WHERE id = ?1"))
                .map_err(sql)?
                .query_row([&id], execution)
                .optional()
                .map_err(sql)?;
            let Some(execution) = execution else {
                return Ok(None);
            };
            let Some(dedupe_id) = &execution.dedupe_id else {
                return Ok(None);
            };
            let Some(holder) = dedupe_holder(connection, &execution, dedupe_id, dedupe_since_ms)?
            else {
                return Ok(None);
            };
            let error = duplicate_error(&holder);
            let record = serde_json::json!({
                "status": "duplicate",
                "duplicateOf": holder,
                "error": {"kind": "duplicate", "message": error},
            })
            .to_string();
            connection
                .prepare_cached(
                    "UPDATE executions SET status = 'duplicate', finished_ms = ?2, error = ?3,
                       record = ?4, duplicate_of = ?5, lease_until_ms = NULL
                     WHERE id = ?1",
                )
                .map_err(sql)?
                .execute(params![id, now_ms, error, record, holder])
                .map_err(sql)?;
            if execution.fifo {
                promote_fifo(
                    connection,
                    &execution.instance_id,
                    &execution.flow_key,
                    now_ms,
                )?;
            }
            Ok(Some(holder))
        })
        .await
    }

    async fn renew_lease(&self, id: &str, lease_until_ms: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |connection| {
            let renewed = connection
                .prepare_cached(
                    "UPDATE executions SET lease_until_ms = MAX(COALESCE(lease_until_ms, 0), ?2)
                     WHERE id = ?1 AND status = 'running'",
                )
                .map_err(sql)?
                .execute(params![id, lease_until_ms])
                .map_err(sql)?;
            Ok(renewed > 0)
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
        self.write(move |connection| {
            connection
                .prepare_cached(
                    "UPDATE executions SET status = 'running', started_ms = ?2, lease_until_ms = ?3 WHERE id = ?1",
                )
                .map_err(sql)?
                .execute(params![id, now_ms, lease_until_ms])
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn finish_execution(&self, id: &str, finish: &Finish) -> Result<(), StoreError> {
        let (id, finish) = (id.to_string(), finish.clone());
        self.write(move |connection| finish_in(connection, &id, &finish))
            .await
    }

    async fn append_logs(&self, id: &str, lines: &[LogLine]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let (id, lines) = (id.to_string(), lines.to_vec());
        self.write(move |connection| append_logs_in(connection, &id, &lines))
            .await
    }

    async fn finish_with_logs(
        &self,
        id: &str,
        lines: &[LogLine],
        finish: &Finish,
    ) -> Result<(), StoreError> {
        let (id, lines, finish) = (id.to_string(), lines.to_vec(), finish.clone());
        self.write(move |connection| {
            append_logs_in(connection, &id, &lines)?;
            finish_in(connection, &id, &finish)
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

    async fn requeue_expired(
        &self,
        now_ms: i64,
        expired_before_ms: i64,
        policy: &CrashPolicy,
    ) -> Result<Requeued, StoreError> {
        let policy = *policy;
        self.write(move |connection| {
            // A running row without a lease predates leases on every running row:
            // its run is as gone as one whose lease ended.
            //
            // Instance event flows end here: they run within their deploy or remove
            // request, whose caller is gone; run again by a worker, a remove flow
            // would tear down what a still-existing instance uses. The client deploys
            // or removes again.
            let mut statement = connection
                .prepare_cached(
                    "UPDATE executions SET status = 'failed', finished_ms = ?1, lease_until_ms = NULL,
                       error = ?3 || ': ' || ?4,
                       record = json_object('status', 'failed', 'error', json_object('kind', ?3, 'message', ?4))
                     WHERE status = 'running' AND COALESCE(lease_until_ms, 0) < ?2 AND trigger = 'event'
                     RETURNING id",
                )
                .map_err(sql)?;
            let interrupted: Vec<String> = statement
                .query_map(
                    params![
                        now_ms,
                        expired_before_ms,
                        INTERRUPTED,
                        "this instance event flow stopped before it ended (the host stopped, or its deploy or remove request was abandoned); it runs only within that request, so it is not run again: deploy (or remove) the instance again"
                    ],
                    |row| row.get(0),
                )
                .map_err(sql)?
                .collect::<Result<_, _>>()
                .map_err(sql)?;
            drop(statement);
            // Those that already used every crash requeue end here: running them
            // again is what brought the process down, perhaps every time. Not a flow
            // failure, so no flow retry either.
            let mut statement = connection
                .prepare_cached(
                    "UPDATE executions SET status = 'failed', finished_ms = ?1, lease_until_ms = NULL,
                       error = ?4 || ': the host stopped ' || (crash_requeues + 1)
                               || ' times while running this execution; it is not run again',
                       record = json_object('status', 'failed', 'error', json_object(
                           'kind', ?4,
                           'message', 'the host stopped ' || (crash_requeues + 1)
                               || ' times while running this execution; it is not run again'))
                     WHERE status = 'running' AND COALESCE(lease_until_ms, 0) < ?2
                       AND crash_requeues >= ?3
                     RETURNING id, instance_id, flow_key, fifo",
                )
                .map_err(sql)?;
            let failed: Vec<(String, String, String, bool)> = statement
                .query_map(
                    params![now_ms, expired_before_ms, policy.max_requeues, HOST_CRASH_LOOP],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .map_err(sql)?
                .collect::<Result<_, _>>()
                .map_err(sql)?;
            drop(statement);
            for (_, instance_id, flow_key, fifo) in &failed {
                if *fifo {
                    promote_fifo(connection, instance_id, flow_key, now_ms)?;
                }
            }
            // The rest wait `backoff * 4^(crash requeues so far)` (the shift is bounded:
            // the count is at most the cap, and the cap is small), so a process that
            // dies on them again does not meet them at once on every start.
            let requeued = connection
                .prepare_cached(
                    "UPDATE executions SET status = 'queued', crash_requeues = crash_requeues + 1,
                       started_ms = NULL, lease_until_ms = NULL,
                       run_after_ms = ?1 + ?4 * (1 << (2 * MIN(crash_requeues, 12)))
                     WHERE status = 'running' AND COALESCE(lease_until_ms, 0) < ?2
                       AND crash_requeues < ?3",
                )
                .map_err(sql)?
                .execute(params![now_ms, expired_before_ms, policy.max_requeues, policy.backoff_ms])
                .map_err(sql)?;
            Ok(Requeued {
                requeued: requeued as u64,
                failed: failed.into_iter().map(|(id, ..)| id).collect(),
                interrupted,
            })
        })
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
            trigger: "webhook".into(),
            run_after_ms: created_ms,
            fifo: false,
            dedupe_id: None,
            request_id: None,
            crash_requeues: 0,
            duplicate_of: None,
        }
    }

    const CRASH: CrashPolicy = CrashPolicy {
        max_requeues: 3,
        backoff_ms: 1_000,
    };

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
                None,
            )
            .await
            .unwrap();
        store
            .insert_execution(
                &row("old-queued", ExecutionStatus::Queued, 1_000),
                &payload(),
                None,
            )
            .await
            .unwrap();
        store
            .insert_execution(
                &row("new-done", ExecutionStatus::Failed, 5_000),
                &payload(),
                None,
            )
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
            .insert_execution(&row("b", ExecutionStatus::Queued, 2), &payload(), None)
            .await
            .unwrap();
        store
            .insert_execution(&row("a", ExecutionStatus::Queued, 1), &payload(), None)
            .await
            .unwrap();
        let first = store.claim_next(10, 100).await.unwrap().unwrap();
        assert_eq!(
            (first.id.as_str(), first.status),
            ("a", ExecutionStatus::Running)
        );
        assert_eq!(store.claim_next(10, 100).await.unwrap().unwrap().id, "b");
        assert!(store.claim_next(10, 100).await.unwrap().is_none());
        assert_eq!(
            store
                .requeue_expired(50, 50, &CRASH)
                .await
                .unwrap()
                .requeued,
            0
        );
        assert_eq!(
            store
                .requeue_expired(101, 101, &CRASH)
                .await
                .unwrap()
                .requeued,
            2
        );
        // Not before its backoff; then with its attempt kept and one crash counted.
        assert!(store.claim_next(1_000, 2_000).await.unwrap().is_none());
        let again = store.claim_next(1_101, 2_000).await.unwrap().unwrap();
        // Both now wait for the same time: the first inserted goes first.
        assert_eq!(
            (again.id.as_str(), again.attempt, again.crash_requeues),
            ("b", 1, 1)
        );
    }

    fn finish(status: ExecutionStatus, at: i64, retry_at_ms: Option<i64>) -> Finish {
        Finish {
            status,
            finished_ms: at,
            failed_step: None,
            error: None,
            record: "{}".into(),
            retry_at_ms,
            holds_dedupe: false,
        }
    }

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        (dir, store)
    }

    async fn status(store: &SqliteStore, id: &str) -> ExecutionStatus {
        store.get_execution("t", id).await.unwrap().unwrap().status
    }

    #[tokio::test]
    async fn tenants_take_turns() {
        let (_dir, store) = store().await;
        for n in 0..6 {
            let mut flood = row(&format!("a{n}"), ExecutionStatus::Queued, n);
            flood.tenant_id = "tenant-a".into();
            store
                .insert_execution(&flood, &payload(), None)
                .await
                .unwrap();
        }
        let mut other = row("b0", ExecutionStatus::Queued, 100);
        other.tenant_id = "tenant-b".into();
        store
            .insert_execution(&other, &payload(), None)
            .await
            .unwrap();
        let mut order = Vec::new();
        while let Some(claimed) = store.claim_next(1_000, 2_000).await.unwrap() {
            order.push(claimed.id);
        }
        assert_eq!(order.len(), 7);
        let b = order.iter().position(|id| id == "b0").unwrap();
        assert!(b <= 1, "tenant b waited behind a's backlog: {order:?}");
        let a: Vec<_> = order.iter().filter(|id| id.starts_with('a')).collect();
        assert_eq!(
            a,
            ["a0", "a1", "a2", "a3", "a4", "a5"],
            "oldest first within a tenant"
        );
    }

    #[tokio::test]
    async fn retries_wait_for_their_time_and_count_attempts() {
        let (_dir, store) = store().await;
        store
            .insert_execution(&row("r", ExecutionStatus::Queued, 1), &payload(), None)
            .await
            .unwrap();
        assert_eq!(store.claim_next(10, 1_000).await.unwrap().unwrap().id, "r");
        store
            .finish_execution("r", &finish(ExecutionStatus::Failed, 20, Some(500)))
            .await
            .unwrap();
        assert!(
            store.claim_next(499, 1_000).await.unwrap().is_none(),
            "not before its time"
        );
        let again = store.claim_next(500, 1_000).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempt), ("r", 2));
        store
            .finish_execution("r", &finish(ExecutionStatus::Succeeded, 600, None))
            .await
            .unwrap();
        assert_eq!(status(&store, "r").await, ExecutionStatus::Succeeded);
    }

    #[tokio::test]
    async fn fifo_runs_one_at_a_time_in_arrival_order_and_a_retrying_head_blocks() {
        let (_dir, store) = store().await;
        let policy = EnqueuePolicy::default();
        for (n, id) in ["f1", "f2", "f3"].iter().enumerate() {
            let mut execution = row(id, ExecutionStatus::Queued, n as i64);
            execution.fifo = true;
            let outcome = store
                .enqueue_execution(&execution, &payload(), &policy)
                .await
                .unwrap();
            let expected = if n == 0 {
                ExecutionStatus::Queued
            } else {
                ExecutionStatus::Waiting
            };
            assert_eq!(
                outcome,
                EnqueueOutcome::Inserted {
                    status: expected,
                    cancelled: 0
                }
            );
        }
        assert_eq!(store.claim_next(10, 1_000).await.unwrap().unwrap().id, "f1");
        assert!(
            store.claim_next(10, 1_000).await.unwrap().is_none(),
            "f2 waits for f1"
        );
        // f1 fails and will retry at 100: it stays the head.
        store
            .finish_execution("f1", &finish(ExecutionStatus::Failed, 20, Some(100)))
            .await
            .unwrap();
        assert!(store.claim_next(50, 1_000).await.unwrap().is_none());
        assert_eq!(status(&store, "f2").await, ExecutionStatus::Waiting);
        assert_eq!(
            store.claim_next(100, 1_000).await.unwrap().unwrap().id,
            "f1"
        );
        store
            .finish_execution("f1", &finish(ExecutionStatus::Succeeded, 110, None))
            .await
            .unwrap();
        assert_eq!(
            store.claim_next(120, 1_000).await.unwrap().unwrap().id,
            "f2"
        );
        store
            .finish_execution("f2", &finish(ExecutionStatus::Failed, 130, None))
            .await
            .unwrap();
        assert_eq!(
            store.claim_next(140, 1_000).await.unwrap().unwrap().id,
            "f3"
        );
    }

    #[tokio::test]
    async fn only_an_accepted_execution_holds_its_dedupe_id_within_the_window() {
        let (_dir, store) = store().await;
        let policy = EnqueuePolicy {
            dedupe_since_ms: Some(0),
            singleton: false,
        };
        let fifo = |id: &str, created_ms: i64| {
            let mut execution = row(id, ExecutionStatus::Queued, created_ms);
            execution.fifo = true;
            execution.dedupe_id = Some("delivery-1".into());
            execution
        };
        // A refused request (a forgery with a real id) runs first and holds nothing.
        store
            .enqueue_execution(&fifo("forged", 900), &payload(), &policy)
            .await
            .unwrap();
        assert_eq!(
            store.claim_next(950, 5_000).await.unwrap().unwrap().id,
            "forged"
        );
        let refused = Finish {
            status: ExecutionStatus::Rejected,
            ..finish(ExecutionStatus::Rejected, 960, None)
        };
        store.finish_execution("forged", &refused).await.unwrap();
        // The genuine one is queued, not a duplicate; and not one when its turn comes.
        assert!(matches!(
            store
                .enqueue_execution(&fifo("d1", 1_000), &payload(), &policy)
                .await
                .unwrap(),
            EnqueueOutcome::Inserted { .. }
        ));
        // A repeat while d1 has not run yet: queued behind it, decided at its turn.
        assert_eq!(
            store
                .enqueue_execution(&fifo("d2", 1_010), &payload(), &policy)
                .await
                .unwrap(),
            EnqueueOutcome::Inserted {
                status: ExecutionStatus::Waiting,
                cancelled: 0
            }
        );
        assert_eq!(
            store.claim_next(1_020, 5_000).await.unwrap().unwrap().id,
            "d1"
        );
        assert_eq!(store.drop_if_duplicate("d1", 0, 1_020).await.unwrap(), None);
        let accepted = Finish {
            holds_dedupe: true,
            ..finish(ExecutionStatus::Succeeded, 1_030, None)
        };
        store.finish_execution("d1", &accepted).await.unwrap();
        assert_eq!(
            store.claim_next(1_040, 5_000).await.unwrap().unwrap().id,
            "d2"
        );
        assert_eq!(
            store.drop_if_duplicate("d2", 0, 1_040).await.unwrap(),
            Some("d1".to_string())
        );
        let dropped = store.get_execution("t", "d2").await.unwrap().unwrap();
        assert_eq!(
            (dropped.status, dropped.duplicate_of.as_deref()),
            (ExecutionStatus::Duplicate, Some("d1"))
        );
        // A repeat once d1 holds the id: written as a duplicate at once.
        assert_eq!(
            store
                .enqueue_execution(&fifo("d3", 1_050), &payload(), &policy)
                .await
                .unwrap(),
            EnqueueOutcome::Duplicate {
                existing_id: "d1".into()
            }
        );
        assert_eq!(status(&store, "d3").await, ExecutionStatus::Duplicate);
        // Outside the window (the holder is older than `since`) it runs again.
        let later = EnqueuePolicy {
            dedupe_since_ms: Some(1_001),
            singleton: false,
        };
        assert!(matches!(
            store
                .enqueue_execution(&fifo("d4", 2_000), &payload(), &later)
                .await
                .unwrap(),
            EnqueueOutcome::Inserted { .. }
        ));
    }

    #[tokio::test]
    async fn a_newer_request_id_cancels_pending_retries_and_singletons_skip() {
        let (_dir, store) = store().await;
        let mut old = row("old", ExecutionStatus::Queued, 1);
        old.request_id = Some("req-1".into());
        store
            .insert_execution(&old, &payload(), None)
            .await
            .unwrap();
        store.claim_next(10, 1_000).await.unwrap().unwrap();
        store
            .finish_execution("old", &finish(ExecutionStatus::Failed, 20, Some(10_000)))
            .await
            .unwrap();
        let mut newer = row("new", ExecutionStatus::Queued, 30);
        newer.request_id = Some("req-1".into());
        let outcome = store
            .enqueue_execution(&newer, &payload(), &EnqueuePolicy::default())
            .await
            .unwrap();
        assert_eq!(
            outcome,
            EnqueueOutcome::Inserted {
                status: ExecutionStatus::Queued,
                cancelled: 1
            }
        );
        assert_eq!(status(&store, "old").await, ExecutionStatus::Cancelled);

        let singleton = EnqueuePolicy {
            dedupe_since_ms: None,
            singleton: true,
        };
        let outcome = store
            .enqueue_execution(
                &row("s", ExecutionStatus::Queued, 40),
                &payload(),
                &singleton,
            )
            .await
            .unwrap();
        assert_eq!(
            outcome,
            EnqueueOutcome::Inserted {
                status: ExecutionStatus::Skipped,
                cancelled: 0
            }
        );
        let skipped = store.get_execution("t", "s").await.unwrap().unwrap();
        assert!(skipped.finished_ms.is_some() && skipped.error.is_some());
    }

    #[tokio::test]
    async fn finishing_with_logs_numbers_after_earlier_runs_and_promotes_the_fifo_queue() {
        let (_dir, store) = store().await;
        for (n, id) in ["h1", "h2"].iter().enumerate() {
            let mut execution = row(id, ExecutionStatus::Queued, n as i64);
            execution.fifo = true;
            store
                .enqueue_execution(&execution, &payload(), &EnqueuePolicy::default())
                .await
                .unwrap();
        }
        assert_eq!(store.claim_next(10, 1_000).await.unwrap().unwrap().id, "h1");
        let line = |seq: i64, message: &str| LogLine {
            seq,
            ts_ms: 10,
            level: 2,
            step: None,
            message: message.into(),
            fields: None,
        };
        // An earlier run's line, then this run's, numbered from 1 by the caller.
        store.append_logs("h1", &[line(1, "run 1")]).await.unwrap();
        store
            .finish_with_logs(
                "h1",
                &[line(1, "run 2 a"), line(2, "run 2 b")],
                &finish(ExecutionStatus::Succeeded, 20, None),
            )
            .await
            .unwrap();
        let logs = store.execution_logs("t", "h1", 0, 0, 10).await.unwrap();
        let seen: Vec<(i64, &str)> = logs
            .iter()
            .map(|line| (line.seq, line.message.as_str()))
            .collect();
        assert_eq!(seen, [(1, "run 1"), (2, "run 2 a"), (3, "run 2 b")]);
        assert_eq!(status(&store, "h1").await, ExecutionStatus::Succeeded);
        assert_eq!(status(&store, "h2").await, ExecutionStatus::Queued);

        // A retry goes back to the queue with its logs kept.
        assert_eq!(store.claim_next(30, 1_000).await.unwrap().unwrap().id, "h2");
        store
            .finish_with_logs(
                "h2",
                &[line(1, "failed")],
                &finish(ExecutionStatus::Failed, 40, Some(500)),
            )
            .await
            .unwrap();
        let again = store.get_execution("t", "h2").await.unwrap().unwrap();
        assert_eq!((again.status, again.attempt), (ExecutionStatus::Queued, 2));
        assert_eq!(
            store
                .execution_logs("t", "h2", 0, 0, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_running_insert_carries_its_lease() {
        let (_dir, store) = store().await;
        let mut running = row("s", ExecutionStatus::Running, 1);
        running.started_ms = Some(1);
        store
            .insert_execution(&running, &payload(), Some(100))
            .await
            .unwrap();
        assert_eq!(
            store
                .requeue_expired(50, 50, &CRASH)
                .await
                .unwrap()
                .requeued,
            0
        );
        assert_eq!(
            store
                .requeue_expired(101, 101, &CRASH)
                .await
                .unwrap()
                .requeued,
            1,
            "the lease expired"
        );
        assert_eq!(status(&store, "s").await, ExecutionStatus::Queued);
    }

    #[tokio::test]
    async fn lost_event_flows_end_interrupted_and_lease_less_rows_are_swept() {
        let (_dir, store) = store().await;
        let mut deploy_flow = row("e", ExecutionStatus::Running, 1);
        deploy_flow.trigger = "event".into();
        store
            .insert_execution(&deploy_flow, &payload(), Some(100))
            .await
            .unwrap();
        // A running row written without a lease (as deploy flows were before leases).
        store
            .insert_execution(&row("old", ExecutionStatus::Running, 2), &payload(), None)
            .await
            .unwrap();
        // A live run whose lease has not lapsed is left alone.
        store
            .insert_execution(
                &row("live", ExecutionStatus::Running, 3),
                &payload(),
                Some(1_000),
            )
            .await
            .unwrap();
        assert!(store.renew_lease("live", 2_000).await.unwrap());
        let done = store.requeue_expired(1_500, 1_500, &CRASH).await.unwrap();
        assert_eq!(done.interrupted, vec!["e".to_string()]);
        assert_eq!((done.requeued, done.failed.len()), (1, 0));
        let ended = store.get_execution("t", "e").await.unwrap().unwrap();
        assert_eq!(ended.status, ExecutionStatus::Failed);
        assert!(
            ended
                .error
                .as_deref()
                .is_some_and(|error| error.starts_with("interrupted:")),
            "{ended:?}"
        );
        assert_eq!(status(&store, "old").await, ExecutionStatus::Queued);
        assert_eq!(status(&store, "live").await, ExecutionStatus::Running);
        // A lease is renewed only while the row is running.
        assert!(!store.renew_lease("e", 5_000).await.unwrap());
    }

    #[tokio::test]
    async fn crash_requeues_back_off_then_fail_with_host_crash_loop() {
        let (_dir, store) = store().await;
        let mut running = row("p", ExecutionStatus::Running, 1);
        running.started_ms = Some(1);
        store
            .insert_execution(&running, &payload(), Some(100))
            .await
            .unwrap();
        // Three crashes: queued again after 1 s, 4 s, 16 s, the attempt kept.
        let mut now = 1_000;
        for (crashes, backoff) in [(1, 1_000), (2, 4_000), (3, 16_000)] {
            let done = store.requeue_expired(now, i64::MAX, &CRASH).await.unwrap();
            assert_eq!((done.requeued, done.failed.len()), (1, 0));
            let queued = store.get_execution("t", "p").await.unwrap().unwrap();
            assert_eq!(
                (queued.status, queued.attempt, queued.crash_requeues),
                (ExecutionStatus::Queued, 1, crashes)
            );
            assert_eq!(queued.run_after_ms, now + backoff);
            assert!(
                store
                    .claim_next(now + backoff - 1, i64::MAX)
                    .await
                    .unwrap()
                    .is_none()
            );
            now += backoff;
            assert_eq!(
                store.claim_next(now, now + 10).await.unwrap().unwrap().id,
                "p"
            );
        }
        // The fourth: failed, not queued.
        let done = store.requeue_expired(now, i64::MAX, &CRASH).await.unwrap();
        assert_eq!((done.requeued, done.failed), (0, vec!["p".to_string()]));
        let failed = store.get_execution("t", "p").await.unwrap().unwrap();
        assert_eq!(failed.status, ExecutionStatus::Failed);
        assert!(
            failed
                .error
                .as_deref()
                .is_some_and(|error| error.starts_with("host-crash-loop:")),
            "{failed:?}"
        );
        let record: serde_json::Value =
            serde_json::from_str(&store.execution_record("t", "p").await.unwrap().unwrap())
                .unwrap();
        assert_eq!(record["error"]["kind"], HOST_CRASH_LOOP);
        assert!(
            store
                .claim_next(i64::MAX - 1, i64::MAX)
                .await
                .unwrap()
                .is_none()
        );
    }
}
