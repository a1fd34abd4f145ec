//! Cross-flow invocation: the [`FlowLauncher`] an embedder gives the engine
//! (`EngineOptions::launcher`) to start another flow of the caller's instance, and how
//! the child's record becomes what the caller receives (an `invokeFlow` step's result).

use std::time::Instant;

use async_trait::async_trait;
use serde_json::json;

use super::executor::EngineOptions;
use super::plan::Plan;
use super::record::{ExecutionRecord, RecordedValue, StepError};
use crate::{Data, ExecutionContext, GuestError, GuestErrorKind, Output};

/// One flow call: which flow, with what, for whom.
#[derive(Debug, Clone)]
pub struct FlowLaunch {
    /// The calling execution: its ids name the instance the child belongs to and the
    /// parent the child records.
    pub parent: ExecutionContext,
    /// Key of the flow to run, in the caller's integration (checked to exist).
    pub flow: String,
    /// The child's trigger payload, as JSON text.
    pub payload: String,
    /// Wait for the child's result (`true`), or only queue it.
    pub synchronous: bool,
    /// When the calling execution must end (its time limit), if it has one: a
    /// synchronous call waits no longer than this.
    pub deadline: Option<Instant>,
}

/// What a launcher did with a [`FlowLaunch`].
#[derive(Debug, Clone)]
pub enum Launched {
    /// A synchronous call ran the child to its end; its record (whose `execution_id`
    /// is the child's).
    Finished(Box<ExecutionRecord>),
    /// An asynchronous call queued the child.
    Queued { execution_id: String },
    /// The child exists but gave no result: it could not start, or it was still
    /// running when the caller stopped waiting (a `retryable` error; the child goes
    /// on). The caller's step records the child with the error.
    Failed {
        execution_id: String,
        error: GuestError,
    },
}

/// Starts child executions for `invokeFlow` steps and `invoke-flow` calls. The engine
/// knows flows only as plan entries; the embedder owns executions (ids, lineage,
/// queues, deadlines), so it decides how a child runs. An error's kind tells the
/// caller whether retrying can help (`retryable` for a missed deadline).
#[async_trait]
pub trait FlowLauncher: Send + Sync {
    async fn launch(&self, launch: FlowLaunch) -> Result<Launched, GuestError>;
}

/// The outcome of one flow call, as the engine records it.
pub(crate) struct FlowCall {
    /// The child execution, when one was started (even if it failed).
    pub child_execution_id: Option<String>,
    /// The child's response (synchronous) or `{"executionId": ...}` (asynchronous).
    pub result: Result<Output, FlowCallError>,
}

/// A failed flow call: the step error, and whether retrying can help.
pub(crate) struct FlowCallError {
    pub error: StepError,
    pub retryable: bool,
}

impl FlowCallError {
    fn new(kind: &str, message: String, retryable: bool) -> Self {
        FlowCallError {
            error: StepError::new(kind, message),
            retryable,
        }
    }
}

/// Runs flow `flow` of `plan` for `caller` through the engine's launcher.
pub(crate) async fn call_flow(
    options: &EngineOptions,
    plan: &Plan,
    launch: FlowLaunch,
) -> FlowCall {
    let refused = |error: FlowCallError| FlowCall {
        child_execution_id: None,
        result: Err(error),
    };
    let flow = launch.flow.clone();
    let Some(target) = plan.inner.flow(&flow) else {
        return refused(FlowCallError::new(
            "fatal",
            format!(
                "no flow `{flow}` in integration `{}` (its flows: {})",
                plan.name(),
                plan.flow_keys().join(", ")
            ),
            false,
        ));
    };
    if let Some(event) = target.on {
        let event = serde_json::to_value(event)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        return refused(FlowCallError::new(
            "fatal",
            format!("flow `{flow}` runs `on: {event}` and cannot be invoked"),
            false,
        ));
    }
    let Some(launcher) = options.launcher.clone() else {
        return refused(FlowCallError::new(
            "fatal",
            format!(
                "cannot invoke flow `{flow}`: this engine has no flow launcher \
                 (EngineOptions::launcher); a server (`sluice serve`) runs child flows, \
                 the engine alone runs one flow"
            ),
            false,
        ));
    };
    let synchronous = launch.synchronous;
    match launcher.launch(launch).await {
        Err(error) => {
            let retryable = error.kind == GuestErrorKind::Retryable;
            refused(FlowCallError {
                error: super::executor::guest_error(error),
                retryable,
            })
        }
        Ok(Launched::Failed {
            execution_id,
            error,
        }) => {
            let retryable = error.kind == GuestErrorKind::Retryable;
            FlowCall {
                child_execution_id: Some(execution_id),
                result: Err(FlowCallError {
                    error: super::executor::guest_error(error),
                    retryable,
                }),
            }
        }
        Ok(Launched::Queued { execution_id }) => FlowCall {
            result: Ok(Output::json(
                json!({ "executionId": execution_id }).to_string(),
            )),
            child_execution_id: Some(execution_id),
        },
        Ok(Launched::Finished(record)) if !synchronous => FlowCall {
            // A launcher may run an asynchronous child at once; the caller still only
            // gets the id it asked for.
            result: Ok(Output::json(
                json!({ "executionId": record.execution_id }).to_string(),
            )),
            child_execution_id: Some(record.execution_id),
        },
        Ok(Launched::Finished(record)) => FlowCall {
            child_execution_id: Some(record.execution_id.clone()),
            result: child_output(options, &flow, *record).await,
        },
    }
}

/// A finished child as its caller's output: its response (status, headers, content
/// type and body), or its error, named with the child's execution and failed step.
async fn child_output(
    options: &EngineOptions,
    flow: &str,
    record: ExecutionRecord,
) -> Result<Output, FlowCallError> {
    let id = &record.execution_id;
    if !record.succeeded() {
        let error = record
            .error
            .unwrap_or_else(|| StepError::new("fatal", "the flow failed without an error"));
        let at = record
            .failed_step
            .map(|step| format!(" at step `{step}`"))
            .unwrap_or_default();
        // The child's kind carries over, so a transient failure down the chain stays
        // retryable for the caller.
        let retryable = matches!(error.kind.as_str(), "retryable" | "timeout");
        return Err(FlowCallError {
            error: StepError {
                kind: error.kind,
                message: format!(
                    "flow `{flow}` (execution {id}) failed{at}: {}",
                    error.message
                ),
                connection: error.connection,
            },
            retryable,
        });
    }
    let Some(response) = record.response else {
        return Ok(Output::json("null"));
    };
    let text = match response.body {
        None => "null".to_string(),
        Some(RecordedValue::Inline(value)) => value.to_string(),
        Some(RecordedValue::Stored { reference, .. }) => {
            let bytes = options.results.get(&reference).await;
            match bytes.map(String::from_utf8) {
                Some(Ok(text)) => text,
                _ => {
                    return Err(FlowCallError::new(
                        "host",
                        format!(
                            "the result of flow `{flow}` (execution {id}) is stored as \
                             `{reference}`, which the result store cannot return"
                        ),
                        true,
                    ));
                }
            }
        }
    };
    Ok(Output {
        data: Data::Json(text),
        content_type: response.content_type,
        status: Some(response.status),
        headers: response.headers,
        branch: None,
    })
}
