//! Where an execution enters the durable queue: the flow's queue policies (FIFO,
//! dedupe window, unique request id, singleton) are read from its definition and
//! applied as the row is written; synchronous runs are written as running and run
//! at once. The workers (`worker`) drain what is queued.

use std::time::Duration;

use sluice_runtime::flow::FlowPolicy;
use tokio::sync::Notify;

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::execution;
use crate::ingress::Accepted;
use crate::store::executions::{
    EnqueueOutcome, EnqueuePolicy, Execution, ExecutionStatus, Payload,
};
use crate::store::instances::InstanceContext;
use crate::store::{new_id, now_ms};

/// The FIFO dedupe window, in (possibly compressed) minutes.
const DEDUPE_WINDOW_MINUTES: u32 = 10;

/// The start of the dedupe window of a request received at `received_ms`: an
/// execution created since then that holds the same dedupe id makes it a duplicate.
pub fn dedupe_since(state: &AppState, received_ms: i64) -> i64 {
    let window = state.config.minute * DEDUPE_WINDOW_MINUTES;
    received_ms.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX))
}

/// Wakes idle workers when an execution is queued.
#[derive(Default)]
pub struct QueueSignal {
    notify: Notify,
}

impl QueueSignal {
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

/// What started an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    /// A request to the flow's webhook URL.
    Webhook,
    /// The flow's schedule.
    Schedule,
    /// A replay of an earlier execution's request.
    Replay,
    /// Another flow (`invoke-flow`).
    Flow,
    /// An instance lifecycle event (deploy, remove).
    Event,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Webhook => "webhook",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Replay => "replay",
            TriggerKind::Flow => "flow",
            TriggerKind::Event => "event",
        }
    }
}

/// An execution to create.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub tenant_id: String,
    pub instance_id: String,
    pub flow_key: String,
    pub trigger: TriggerKind,
    pub payload: Payload,
    pub parent_id: Option<String>,
    pub replay_of: Option<String>,
    /// Record as `skipped` instead of queueing while an execution of this instance
    /// and flow is unfinished.
    pub singleton: bool,
}

impl NewExecution {
    /// The execution's row, first attempt, created `now`: `queued` for a worker, or
    /// `running` (started now) for a caller that runs it at once, synchronously.
    pub fn row(&self, status: ExecutionStatus, now: i64) -> Execution {
        let running = status == ExecutionStatus::Running;
        Execution {
            id: new_id(),
            tenant_id: self.tenant_id.clone(),
            instance_id: self.instance_id.clone(),
            flow_key: self.flow_key.clone(),
            status,
            synchronous: running,
            attempt: 1,
            created_ms: now,
            started_ms: running.then_some(now),
            finished_ms: None,
            failed_step: None,
            error: None,
            parent_id: self.parent_id.clone(),
            replay_of: self.replay_of.clone(),
            trigger: self.trigger.as_str().to_string(),
            run_after_ms: now,
            fifo: false,
            dedupe_id: None,
            request_id: None,
            crash_requeues: 0,
            duplicate_of: None,
        }
    }
}

/// What enqueueing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued (or waiting behind its FIFO queue's head).
    Queued { execution_id: String },
    /// A repeat of a dedupe id another execution holds within the window: recorded
    /// as `duplicate` (`execution_id`) of `original`, not run.
    Deduplicated {
        execution_id: String,
        original: String,
    },
    /// Recorded as skipped (singleton flow still running).
    Skipped { execution_id: String },
}

impl Enqueued {
    pub fn execution_id(&self) -> &str {
        match self {
            Enqueued::Queued { execution_id }
            | Enqueued::Deduplicated { execution_id, .. }
            | Enqueued::Skipped { execution_id } => execution_id,
        }
    }
}

/// Queues an asynchronous execution, applying its flow's queue policies. Looks the
/// flow's policy up from the instance's integration version.
pub async fn enqueue(state: &AppState, new: NewExecution) -> Result<Enqueued, ApiError> {
    let policy = flow_policy(state, &new.tenant_id, &new.instance_id, &new.flow_key).await?;
    enqueue_with(state, new, &policy).await
}

/// The queue policy of an instance's flow, from the integration version it runs.
pub async fn flow_policy(
    state: &AppState,
    tenant: &str,
    instance: &str,
    flow: &str,
) -> Result<FlowPolicy, ApiError> {
    let instance = state
        .store
        .get_instance(tenant, instance)
        .await?
        .ok_or_else(|| ApiError::not_found("instance"))?;
    let compiled = crate::integrations::instance_plan(state, &instance).await?;
    Ok(compiled.plan.flow_policy(flow).cloned().unwrap_or_default())
}

/// [`enqueue`] with the flow's policy already at hand.
pub async fn enqueue_with(
    state: &AppState,
    new: NewExecution,
    policy: &FlowPolicy,
) -> Result<Enqueued, ApiError> {
    let now = now_ms();
    let request_id = policy
        .retry
        .as_ref()
        .and_then(|retry| retry.unique_request_id.as_deref())
        .and_then(|at| request_value(&new.payload, at));
    // A replay is asked for on purpose: the dedupe window must not swallow it.
    let dedupe_id = if policy.fifo && new.trigger != TriggerKind::Replay {
        policy
            .dedupe_id
            .as_deref()
            .and_then(|at| request_value(&new.payload, at))
    } else {
        None
    };
    let store_policy = EnqueuePolicy {
        dedupe_since_ms: dedupe_id.as_ref().map(|_| dedupe_since(state, now)),
        singleton: new.singleton && policy.singleton,
    };
    let execution = Execution {
        fifo: policy.fifo,
        dedupe_id,
        request_id,
        ..new.row(ExecutionStatus::Queued, now)
    };
    // Durable before anything is answered: a crash after this line loses nothing.
    let outcome = state
        .store
        .enqueue_execution(&execution, &new.payload, &store_policy)
        .await?;
    match outcome {
        EnqueueOutcome::Duplicate { existing_id } => {
            tracing::info!(execution = %execution.id, original = %existing_id, "repeated dedupe id: recorded as a duplicate, not queued");
            Ok(Enqueued::Deduplicated {
                execution_id: execution.id,
                original: existing_id,
            })
        }
        EnqueueOutcome::Inserted { status, cancelled } => {
            if cancelled > 0 {
                tracing::info!(execution = %execution.id, cancelled, "a newer request cancelled pending retries");
            }
            if status == ExecutionStatus::Skipped {
                return Ok(Enqueued::Skipped {
                    execution_id: execution.id,
                });
            }
            if status == ExecutionStatus::Queued {
                state.queue.notify();
            }
            Ok(Enqueued::Queued {
                execution_id: execution.id,
            })
        }
    }
}

/// Runs an execution at once (written as running first, so a crash cannot lose it)
/// while the caller waits up to `deadline`; the execution goes on after it. A FIFO
/// flow (`policy`) is refused: its executions only run from its queue, in order.
/// `instance` is the context of the execution's instance if the caller has just read
/// it (a webhook's ingress); without it, the run reads it.
pub async fn run_synchronously(
    state: &AppState,
    new: NewExecution,
    policy: &FlowPolicy,
    instance: Option<InstanceContext>,
    deadline: Duration,
) -> Result<Accepted, ApiError> {
    if policy.fifo {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "fifo-flow",
            format!(
                "flow `{}` is a FIFO flow: its executions run from its queue, one at a time, and cannot be synchronous",
                new.flow_key
            ),
        ));
    }
    let now = now_ms();
    let execution = new.row(ExecutionStatus::Running, now);
    // Written running with its lease in one write: if the process dies during the
    // run, the lease expires and a worker runs it again.
    state
        .store
        .insert_execution(
            &execution,
            &new.payload,
            Some(crate::leases::lease_until(state, now)),
        )
        .await?;
    let execution_id = execution.id.clone();
    let tenant_id = execution.tenant_id.clone();
    // Spawned, so that a caller who gives up (or the deadline) does not cancel it.
    let task_state = state.clone();
    let payload = new.payload;
    let task =
        tokio::spawn(
            async move { execution::run(&task_state, &execution, payload, instance).await },
        );
    match tokio::time::timeout(deadline, task).await {
        Ok(Ok(record)) => Ok(Accepted::Completed {
            execution_id,
            tenant_id,
            record: record.map(Box::new),
        }),
        Ok(Err(join)) => Err(ApiError::internal(join)),
        Err(_) => Ok(Accepted::DeadlinePassed { execution_id }),
    }
}

/// The text at `at` in a stored request: `body.a.b` (the body read as JSON; numbers
/// index lists), `headers.<name>` (case-insensitive) or `query.<name>`. Strings as
/// they are, other JSON values as JSON text; missing or null is `None`.
pub fn request_value(payload: &Payload, at: &str) -> Option<String> {
    let (root, rest) = at.split_once('.')?;
    match root {
        "headers" => payload
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(rest))
            .map(|(_, value)| value.clone()),
        "query" => payload
            .query
            .iter()
            .find(|(name, _)| name == rest)
            .map(|(_, value)| value.clone()),
        "body" => {
            let body: serde_json::Value = serde_json::from_slice(&payload.body).ok()?;
            let mut value = &body;
            for part in rest.split('.') {
                value = match value {
                    serde_json::Value::Object(map) => map.get(part)?,
                    serde_json::Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                    _ => return None,
                };
            }
            match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(text) => Some(text.clone()),
                other => Some(other.to_string()),
            }
        }
        _ => None,
    }
}

/// When the next attempt of an execution that failed on `attempt` runs, if its
/// flow retries: the delay in minutes, doubled per earlier retry when exponential,
/// capped at 24 hours.
pub fn retry_at(state: &AppState, policy: &FlowPolicy, attempt: i64, now: i64) -> Option<i64> {
    let retry = policy.retry.as_ref()?;
    if attempt > i64::from(retry.attempts) {
        return None;
    }
    let cap = sluice_runtime::flow::MAX_FLOW_RETRY_DELAY_MINUTES;
    let minutes = if retry.exponential {
        let doublings = u32::try_from(attempt - 1).unwrap_or(u32::MAX).min(20);
        retry.delay_minutes.saturating_mul(1 << doublings).min(cap)
    } else {
        retry.delay_minutes.min(cap)
    };
    let minute_ms = i64::try_from(state.config.minute.as_millis()).unwrap_or(60_000);
    Some(now.saturating_add(minute_ms.saturating_mul(i64::try_from(minutes).unwrap_or(0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(body: &str) -> Payload {
        Payload {
            method: "POST".into(),
            path: String::new(),
            query: vec![("id".into(), "q1".into())],
            headers: vec![("x-delivery".into(), "d-7".into())],
            body: body.as_bytes().to_vec(),
            received_ms: 0,
        }
    }

    #[test]
    fn request_values_come_from_body_headers_and_query() {
        let p = payload(r#"{"issue": {"number": 42, "tags": ["a", "b"]}, "id": "r-1", "n": null}"#);
        assert_eq!(
            request_value(&p, "body.issue.number").as_deref(),
            Some("42")
        );
        assert_eq!(request_value(&p, "body.issue.tags.1").as_deref(), Some("b"));
        assert_eq!(request_value(&p, "body.id").as_deref(), Some("r-1"));
        assert_eq!(request_value(&p, "body.n"), None);
        assert_eq!(request_value(&p, "body.missing"), None);
        assert_eq!(
            request_value(&p, "headers.X-Delivery").as_deref(),
            Some("d-7")
        );
        assert_eq!(request_value(&p, "query.id").as_deref(), Some("q1"));
        assert_eq!(request_value(&payload("not json"), "body.id"), None);
        assert_eq!(request_value(&p, "cookies.id"), None);
    }
}
