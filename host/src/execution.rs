//! Running one execution of an instance's flow: its environment, the flow engine, and
//! what it leaves in the store (the record, the logs, large results). Both the
//! workers (asynchronous executions) and synchronous webhook callers come here.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use sluice_runtime::flow::{ExecutionRecord, FlowPolicy, ResultStore};
use sluice_runtime::{HttpRequest, Limits, LogLevel, LogRecord, LogSink};
use tracing::Instrument as _;

use crate::app::AppState;
use crate::instances;
use crate::integrations;
use crate::queue;
use crate::store::executions::{Execution, ExecutionStatus, Finish, LogLine, Payload};
use crate::store::instances::InstanceContext;
use crate::store::{Store, now_ms};

/// How long an asynchronous execution that found the runtime busy waits before it
/// is tried again.
const BUSY_RETRY_MS: i64 = 1000;

/// Large step results in the store, so they outlive the process and can be read back.
pub struct HostResultStore {
    store: Arc<dyn Store>,
}

impl HostResultStore {
    pub fn new(store: Arc<dyn Store>) -> Self {
        HostResultStore { store }
    }
}

#[async_trait]
impl ResultStore for HostResultStore {
    async fn put(&self, execution_id: &str, step: &str, data: Vec<u8>) -> Result<String, String> {
        self.store
            .put_result(execution_id, step, &data)
            .await
            .map_err(|err| err.to_string())
    }

    async fn get(&self, reference: &str) -> Option<Vec<u8>> {
        self.store.get_result(None, reference).await.ok().flatten()
    }
}

/// Collects an execution's log lines (numbered) while it runs; they are written in one
/// batch when it ends. Lines also go to `tracing` at debug level.
#[derive(Default)]
pub struct CollectedLogs {
    lines: Mutex<Vec<LogLine>>,
}

impl CollectedLogs {
    fn take(&self) -> Vec<LogLine> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

pub fn level_number(level: LogLevel) -> i64 {
    match level {
        LogLevel::Trace => 0,
        LogLevel::Debug => 1,
        LogLevel::Info => 2,
        LogLevel::Warn => 3,
        LogLevel::Error => 4,
    }
}

impl LogSink for CollectedLogs {
    fn write(&self, record: LogRecord) {
        tracing::debug!(target: "sluice::guest", step = record.step.as_deref().unwrap_or(""), level = %record.level, "{}", record.message);
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = lines.len() as i64 + 1;
        lines.push(LogLine {
            seq,
            ts_ms: i64::try_from(record.timestamp_ms).unwrap_or(i64::MAX),
            level: level_number(record.level),
            step: record.step,
            message: record.message,
            fields: record.fields,
        });
    }
}

/// The request a stored payload describes.
pub fn request_of(payload: Payload) -> HttpRequest {
    HttpRequest {
        method: payload.method,
        path: payload.path,
        query: payload.query,
        headers: payload.headers,
        body: payload.body,
    }
}

/// Why an execution could not run at all (it is recorded as failed with this).
fn failed_before_start(reason: String, now: i64) -> Finish {
    let record =
        serde_json::json!({"status": "failed", "error": {"kind": "host", "message": reason}});
    Finish {
        status: ExecutionStatus::Failed,
        finished_ms: now,
        failed_step: None,
        error: Some(reason),
        record: record.to_string(),
        retry_at_ms: None,
    }
}

/// Runs `execution` (already marked running) to its end and stores the outcome.
/// Returns the record when the flow ran. `instance` is its instance's context when
/// the caller has just read it (a webhook's ingress); without it, it is read here.
pub async fn run(
    state: &AppState,
    execution: &Execution,
    payload: Payload,
    instance: Option<InstanceContext>,
) -> Option<ExecutionRecord> {
    let span = tracing::info_span!(
        "execution",
        tenant = %execution.tenant_id,
        instance = %execution.instance_id,
        flow = %execution.flow_key,
        execution = %execution.id,
        attempt = execution.attempt,
    );
    let logs = Arc::new(CollectedLogs::default());
    let outcome = run_flow(state, execution, payload, instance, Arc::clone(&logs))
        .instrument(span)
        .await;
    let now = now_ms();
    let (finish, record) = match outcome {
        Ok((record, policy)) => {
            let status = if record.succeeded() {
                ExecutionStatus::Succeeded
            } else {
                ExecutionStatus::Failed
            };
            let json = serde_json::to_string(&record).unwrap_or_else(|err| {
                serde_json::json!({"status": "unrecordable", "error": err.to_string()}).to_string()
            });
            let error = record
                .error
                .as_ref()
                .map(|error| format!("{}: {}", error.kind, error.message));
            // Only asynchronous runs are retried: a synchronous caller has its answer.
            // One that found every sandbox slot taken (`busy`) is not lost to
            // overload: it goes back to the queue for a second later, whatever its
            // flow's retry policy.
            let busy = record
                .error
                .as_ref()
                .is_some_and(|error| error.kind == "busy");
            let retry_at_ms = (status == ExecutionStatus::Failed && !execution.synchronous)
                .then(|| {
                    if busy {
                        Some(now + BUSY_RETRY_MS)
                    } else {
                        queue::retry_at(state, &policy, execution.attempt, now)
                    }
                })
                .flatten();
            (
                Finish {
                    status,
                    finished_ms: now,
                    failed_step: record.failed_step.clone(),
                    error,
                    record: json,
                    retry_at_ms,
                },
                Some(record),
            )
        }
        Err(reason) => (failed_before_start(reason, now), None),
    };
    // Logs and end in one transaction: one write per run instead of two.
    let lines = logs.take();
    if let Err(err) = state
        .store
        .finish_with_logs(&execution.id, &lines, &finish)
        .await
    {
        tracing::error!(execution = %execution.id, error = %err, "cannot store the execution's logs and end");
        // The end matters more than the logs: without it the execution stays
        // running until its lease expires and then runs again. Try it alone.
        if let Err(err) = state.store.finish_execution(&execution.id, &finish).await {
            tracing::error!(execution = %execution.id, error = %err, "cannot store the execution's end");
        }
    }
    match finish.retry_at_ms {
        Some(at) => {
            // The workers poll the queue, so they find it when its time comes.
            tracing::info!(execution = %execution.id, attempt = execution.attempt, retry_in_ms = at - now, "execution failed; retry queued");
        }
        None => {
            tracing::info!(execution = %execution.id, status = finish.status.as_str(), "execution ended");
            // A FIFO queue may have a new head.
            if execution.fifo {
                state.queue.notify();
            }
        }
    }
    record
}

async fn run_flow(
    state: &AppState,
    execution: &Execution,
    payload: Payload,
    context: Option<InstanceContext>,
    logs: Arc<CollectedLogs>,
) -> Result<(ExecutionRecord, FlowPolicy), String> {
    let context = match context {
        Some(context) => context,
        None => state
            .store
            .instance_context(&execution.tenant_id, &execution.instance_id)
            .await
            .map_err(|err| err.to_string())?
            .ok_or_else(|| "the instance was removed".to_string())?,
    };
    let instance = &context.instance;
    let compiled = integrations::instance_plan(state, instance)
        .await
        .map_err(|err| err.message)?;
    let policy = compiled
        .plan
        .flow_policy(&execution.flow_key)
        .cloned()
        .unwrap_or_default();
    let time_limit = policy.time_limit.unwrap_or(if execution.synchronous {
        state.config.sync_time_limit
    } else {
        state.config.async_time_limit
    });
    let mut env =
        instances::context_environment(state, &context, &execution.id, logs, Limits::default())
            .map_err(|err| err.message)?;
    env.context.attempt = u32::try_from(execution.attempt).unwrap_or(u32::MAX);
    env.context.started_at_ms = u64::try_from(now_ms()).unwrap_or(0);
    // The flow's time limit, enforced by the engine through each step's sandbox.
    env.deadline = Some(std::time::Instant::now() + time_limit);
    let record = state
        .engine
        .run(
            &compiled.plan,
            &execution.flow_key,
            request_of(payload),
            &env,
        )
        .await
        .map_err(|err| err.to_string())?;
    Ok((record, policy))
}
