//! Running one execution of an instance's flow: its environment, the flow engine, and
//! what it leaves in the store (the record, the logs, large results). Both the
//! workers (asynchronous executions) and synchronous webhook callers come here.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use sluice_runtime::flow::{ExecutionRecord, FlowPolicy, ResultStore, StepErrorKind};
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

/// What each stored log record costs against the stored-log byte cap beyond its
/// text: an empty line is not free to store.
pub const LOG_RECORD_OVERHEAD: usize = 64;

/// The stored form of a record (the execution record JSON) may not grow past this;
/// a larger one is replaced by a summary (SQLite refuses values over 1 GB, and the
/// server would hold several copies of it).
pub const MAX_RECORD_BYTES: usize = 32 << 20;

/// Collects an execution's log lines (numbered) while it runs, up to the server's
/// stored-log cap (records and bytes): past it, records are dropped and counted, and
/// one line saying how many ends the stored logs. They are written in one batch with
/// the execution's end, so what a run can hold in memory here is bounded by the cap,
/// whatever the guest (or the host on its behalf) writes. Lines also go to `tracing`
/// at debug level, kept or not.
pub struct CollectedLogs {
    max_records: usize,
    max_bytes: usize,
    collected: Mutex<Collected>,
}

#[derive(Default)]
struct Collected {
    lines: Vec<LogLine>,
    bytes: usize,
    dropped: u64,
    last_ms: i64,
}

impl CollectedLogs {
    /// Keeps at most `max_records` records and `max_bytes` bytes (each record costs
    /// [`LOG_RECORD_OVERHEAD`] plus its message, fields and step name).
    pub fn new(max_records: usize, max_bytes: usize) -> Self {
        CollectedLogs {
            max_records,
            max_bytes,
            collected: Mutex::default(),
        }
    }

    /// The lines kept, and the line counting the dropped ones (if any) last.
    fn take(&self) -> Vec<LogLine> {
        let mut collected = self
            .collected
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Collected {
            mut lines,
            dropped,
            last_ms,
            ..
        } = std::mem::take(&mut *collected);
        if dropped > 0 {
            lines.push(LogLine {
                seq: lines.len() as i64 + 1,
                ts_ms: last_ms,
                level: level_number(LogLevel::Warn),
                step: None,
                message: dropped_message(dropped, self.max_records, self.max_bytes),
                fields: None,
            });
        }
        lines
    }
}

fn dropped_message(dropped: u64, max_records: usize, max_bytes: usize) -> String {
    format!(
        "{dropped} log records dropped: past the stored log limit of {max_records} records or {max_bytes} bytes per run"
    )
}

/// What a record costs against the stored-log byte cap.
fn log_cost(message: &str, fields: Option<&str>, step: Option<&str>) -> usize {
    LOG_RECORD_OVERHEAD
        .saturating_add(message.len())
        .saturating_add(fields.map_or(0, str::len))
        .saturating_add(step.map_or(0, str::len))
}

/// Bounds the logs the execution record repeats (each step's lines) by the same cap
/// as the stored logs: the first lines are kept, the rest counted in one warning on
/// the step where dropping began.
fn bound_record_logs(record: &mut ExecutionRecord, max_records: usize, max_bytes: usize) {
    let (mut kept, mut bytes, mut dropped) = (0usize, 0usize, 0u64);
    let mut first_cut: Option<usize> = None;
    for (index, step) in record.steps.iter_mut().enumerate() {
        let mut keep = step.logs.len();
        for (at, line) in step.logs.iter().enumerate() {
            let cost = log_cost(&line.message, line.fields.as_deref(), line.step.as_deref());
            if dropped > 0 || kept >= max_records || bytes.saturating_add(cost) > max_bytes {
                keep = at;
                break;
            }
            kept += 1;
            bytes += cost;
        }
        if keep < step.logs.len() {
            dropped += (step.logs.len() - keep) as u64;
            step.logs.truncate(keep);
            step.logs.shrink_to_fit();
            first_cut.get_or_insert(index);
        }
    }
    if let Some(index) = first_cut
        && let Some(step) = record.steps.get_mut(index)
    {
        step.logs.push(LogRecord {
            execution_id: record.execution_id.clone(),
            step: Some(step.key.clone()),
            level: LogLevel::Warn,
            message: dropped_message(dropped, max_records, max_bytes),
            fields: None,
            timestamp_ms: step.ended_at_ms,
        });
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
        let ts_ms = i64::try_from(record.timestamp_ms).unwrap_or(i64::MAX);
        let cost = log_cost(
            &record.message,
            record.fields.as_deref(),
            record.step.as_deref(),
        );
        let mut collected = self
            .collected
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        collected.last_ms = ts_ms;
        // Once one record is dropped, all later ones are too: the stored logs are a
        // prefix of what was written, then the count of the rest.
        if collected.dropped > 0
            || collected.lines.len() >= self.max_records
            || collected.bytes.saturating_add(cost) > self.max_bytes
        {
            collected.dropped += 1;
            return;
        }
        collected.bytes += cost;
        let seq = collected.lines.len() as i64 + 1;
        collected.lines.push(LogLine {
            seq,
            ts_ms,
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
        holds_dedupe: false,
    }
}

/// Runs `execution` (already marked running, with its lease) to its end and stores
/// the outcome, renewing its lease while it runs. Returns the record when the flow
/// ran. `instance` is its instance's context when the caller has just read it (a
/// webhook's ingress); without it, it is read here.
///
/// An execution with a FIFO dedupe id first checks whether another execution of its
/// flow holds that id (its trigger accepted it) within the window: then it ends as
/// `duplicate` without running. Its own trigger accepting the request makes it hold
/// the id; a trigger refusing it ends it `rejected`, holding nothing.
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
    if execution.dedupe_id.is_some() {
        let now = now_ms();
        match state
            .store
            .drop_if_duplicate(
                &execution.id,
                queue::dedupe_since(state, execution.created_ms),
                now,
            )
            .await
        {
            Ok(None) => {}
            Ok(Some(original)) => {
                tracing::info!(execution = %execution.id, %original, "repeated dedupe id: recorded as a duplicate, not run");
                // Its FIFO queue has a new head.
                state.queue.notify();
                return None;
            }
            // Running it is the safer mistake: the flow's steps are idempotent by
            // contract, a request dropped for a store error is lost.
            Err(err) => {
                tracing::error!(execution = %execution.id, error = %err, "cannot check the dedupe id; running the execution");
            }
        }
    }
    let (max_log_records, max_log_bytes) = (
        state.config.max_execution_log_records,
        state.config.max_execution_log_bytes,
    );
    let logs = Arc::new(CollectedLogs::new(max_log_records, max_log_bytes));
    let outcome = crate::leases::keep_while(
        state,
        &execution.id,
        run_flow(state, execution, payload, instance, Arc::clone(&logs)).instrument(span),
    )
    .await;
    let now = now_ms();
    let (finish, record) = match outcome {
        Ok((mut record, policy)) => {
            bound_record_logs(&mut record, max_log_records, max_log_bytes);
            // A trigger answering with an error status refused the request (a bad
            // signature): not a success of the flow, nor a failure to retry.
            let status = if record.trigger_refused() {
                ExecutionStatus::Rejected
            } else if record.succeeded() {
                ExecutionStatus::Succeeded
            } else {
                ExecutionStatus::Failed
            };
            let mut json = serde_json::to_string(&record).unwrap_or_else(|err| {
                serde_json::json!({"status": "unrecordable", "error": err.to_string()}).to_string()
            });
            if json.len() > MAX_RECORD_BYTES {
                json = oversized_record(&record, json.len());
            }
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
                .is_some_and(|error| error.kind == StepErrorKind::Busy);
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
                    holds_dedupe: execution.dedupe_id.is_some() && record.trigger_accepted(),
                },
                Some(record),
            )
        }
        Err(reason) => (failed_before_start(reason, now), None),
    };
    // Logs and end in one transaction: one write per run instead of two.
    let lines = logs.take();
    store_end(state, execution, lines, &finish, now).await;
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

/// Stores how a run ended with its logs. The end matters more than the logs: without
/// it the execution stays running until the process stops, then runs again. So when
/// the logs cannot be stored, the end is stored with one line saying so; when even
/// that fails, the end alone, then the end with a minimal record.
async fn store_end(
    state: &AppState,
    execution: &Execution,
    lines: Vec<LogLine>,
    finish: &Finish,
    now: i64,
) {
    let Err(err) = state
        .store
        .finish_with_logs(&execution.id, &lines, finish)
        .await
    else {
        return;
    };
    tracing::error!(execution = %execution.id, error = %err, lines = lines.len(), "cannot store the execution's logs and end");
    drop(lines);
    let note = LogLine {
        seq: 1,
        ts_ms: now,
        level: level_number(LogLevel::Error),
        step: None,
        message: format!("the logs of this run could not be stored: {err}"),
        fields: None,
    };
    let Err(err) = state
        .store
        .finish_with_logs(&execution.id, &[note], finish)
        .await
    else {
        return;
    };
    tracing::error!(execution = %execution.id, error = %err, "cannot store the execution's end with a note on its logs");
    let Err(err) = state.store.finish_execution(&execution.id, finish).await else {
        return;
    };
    tracing::error!(execution = %execution.id, error = %err, "cannot store the execution's end");
    let minimal = Finish {
        record: serde_json::json!({
            "status": finish.status.as_str(),
            "error": {"kind": "host", "message": format!("the record of this run could not be stored: {err}")},
        })
        .to_string(),
        ..finish.clone()
    };
    if let Err(err) = state.store.finish_execution(&execution.id, &minimal).await {
        tracing::error!(execution = %execution.id, error = %err, "cannot store the execution's end, even with a minimal record");
    }
}

/// The stored form of a record over [`MAX_RECORD_BYTES`]: its status, error and
/// steps' outcomes without their results and logs.
fn oversized_record(record: &ExecutionRecord, size: usize) -> String {
    let steps: Vec<serde_json::Value> = record
        .steps
        .iter()
        .map(
            |step| serde_json::json!({"key": step.key, "status": step.status, "error": step.error}),
        )
        .collect();
    serde_json::json!({
        "executionId": record.execution_id,
        "flow": record.flow,
        "status": record.status,
        "failedStep": record.failed_step,
        "error": record.error,
        "steps": steps,
        "truncated": format!("the record was {size} bytes, over the stored limit of {MAX_RECORD_BYTES}: results and logs left out"),
    })
    .to_string()
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
