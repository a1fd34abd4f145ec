//! The durable queue on SQLite ([`ExecutionQueue`]): claiming is one
//! `UPDATE ... RETURNING` per row, so two workers never take the same execution;
//! tenants take turns; FIFO, dedupe, singleton and retry cancellation are applied in
//! the transaction that writes the row; leases, and runs taken back after a crash.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{Connection, OptionalExtension, params};

use super::archive::append_logs_in;
use super::{COLUMNS, execution};
use crate::store::StoreError;
use crate::store::executions::{
    CrashPolicy, EnqueueOutcome, EnqueuePolicy, Execution, ExecutionQueue, ExecutionStatus, Finish,
    HOST_CRASH_LOOP, INTERRUPTED, LogLine, Payload, Requeued,
};
use crate::store::sqlite::{SqliteStore, sql};

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

fn pairs_json(pairs: &[(String, String)]) -> Result<String, StoreError> {
    serde_json::to_string(pairs).map_err(|err| StoreError::Backend(err.to_string()))
}

#[async_trait]
impl ExecutionQueue for SqliteStore {
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
}

#[cfg(test)]
mod tests;
