//! Flow calls: how an `invokeFlow` step or an `invoke-flow` call asks the embedder's
//! [`FlowLauncher`](crate::flow::FlowLauncher) for a child execution, and how the
//! child's record becomes what the caller receives (its response, or its error).

use serde_json::json;

use super::attempt::{AttemptError, Attempted, Attempts};
use super::options::EngineOptions;
use crate::flow::launcher::{FlowLaunch, Launched};
use crate::flow::plan::Plan;
use crate::flow::record::{
    AttemptRecord, ExecutionRecord, RecordedValue, StepError, StepErrorKind, micros,
};
use crate::{Data, Output};

/// The outcome of one flow call, as the engine records it.
pub(crate) struct FlowCall {
    /// The child execution, when one was started (even if it failed).
    pub child_execution_id: Option<String>,
    /// The child's response (synchronous) or `{"executionId": ...}` (asynchronous).
    pub result: Result<Output, AttemptError>,
}

/// Runs flow `launch.flow` of `plan` for `launch.parent` through the engine's launcher.
pub(crate) async fn call_flow(
    options: &EngineOptions,
    plan: &Plan,
    launch: FlowLaunch,
) -> FlowCall {
    let refused = |kind, message: String| FlowCall {
        child_execution_id: None,
        result: Err(AttemptError::new(kind, message, false)),
    };
    let flow = launch.flow.clone();
    let Some(target) = plan.inner.flow(&flow) else {
        return refused(
            StepErrorKind::Fatal,
            format!(
                "no flow `{flow}` in integration `{}` (its flows: {})",
                plan.name(),
                plan.flow_keys().join(", ")
            ),
        );
    };
    if let Some(event) = target.on {
        let event = serde_json::to_value(event)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        return refused(
            StepErrorKind::Fatal,
            format!("flow `{flow}` runs `on: {event}` and cannot be invoked"),
        );
    }
    let Some(launcher) = options.launcher.clone() else {
        return refused(
            StepErrorKind::Fatal,
            format!(
                "cannot invoke flow `{flow}`: this engine has no flow launcher \
                 (EngineOptions::launcher); a server (`sluice serve`) runs child flows, \
                 the engine alone runs one flow"
            ),
        );
    };
    let synchronous = launch.synchronous;
    match launcher.launch(launch).await {
        Err(error) => FlowCall {
            child_execution_id: None,
            result: Err(error.into()),
        },
        Ok(Launched::Failed {
            execution_id,
            error,
        }) => FlowCall {
            child_execution_id: Some(execution_id),
            result: Err(error.into()),
        },
        Ok(Launched::Queued { execution_id }) => FlowCall {
            result: Ok(queued(&execution_id)),
            child_execution_id: Some(execution_id),
        },
        // A launcher may run an asynchronous child at once; the caller still only gets
        // the id it asked for.
        Ok(Launched::Finished(record)) if !synchronous => FlowCall {
            result: Ok(queued(&record.execution_id)),
            child_execution_id: Some(record.execution_id),
        },
        Ok(Launched::Finished(record)) => FlowCall {
            child_execution_id: Some(record.execution_id.clone()),
            result: child_output(options, &flow, *record).await,
        },
    }
}

/// What an asynchronous call returns: the child's id.
fn queued(execution_id: &str) -> Output {
    Output::json(json!({ "executionId": execution_id }).to_string())
}

/// A finished child as its caller's output: its response (status, headers, content
/// type and body), or its error, named with the child's execution and failed step.
async fn child_output(
    options: &EngineOptions,
    flow: &str,
    record: ExecutionRecord,
) -> Result<Output, AttemptError> {
    let id = &record.execution_id;
    if !record.succeeded() {
        let error = record.error.unwrap_or_else(|| {
            StepError::new(StepErrorKind::Fatal, "the flow failed without an error")
        });
        let at = record
            .failed_step
            .map(|step| format!(" at step `{step}`"))
            .unwrap_or_default();
        // The child's kind carries over, so a transient failure down the chain stays
        // retryable for the caller.
        let retryable = matches!(
            error.kind,
            StepErrorKind::Retryable | StepErrorKind::Timeout
        );
        return Err(AttemptError {
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
                    return Err(AttemptError::new(
                        StepErrorKind::Host,
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

/// The attempts of a flow call: each launches a new child (the parent context's
/// `attempt` says which), and the last child started is remembered for the record.
pub(crate) struct FlowAttempts<'a> {
    pub options: &'a EngineOptions,
    pub plan: &'a Plan,
    pub launch: FlowLaunch,
    pub child_execution_id: Option<String>,
}

impl Attempts for FlowAttempts<'_> {
    type Output = Output;

    async fn attempt(&mut self, number: u32, delay_ms: u64, _last: bool) -> Attempted<Output> {
        let started = std::time::Instant::now();
        let mut launch = self.launch.clone();
        launch.parent.attempt = number;
        let FlowCall {
            child_execution_id,
            result,
        } = call_flow(self.options, self.plan, launch).await;
        if child_execution_id.is_some() {
            self.child_execution_id = child_execution_id;
        }
        let outcome = match (&result, self.launch.synchronous) {
            (Err(_), _) => "failed",
            (Ok(_), true) => "completed",
            (Ok(_), false) => "queued",
        };
        Attempted {
            record: AttemptRecord {
                attempt: number,
                outcome: outcome.into(),
                delay_before_ms: delay_ms,
                duration_us: micros(started.elapsed()),
                fuel_used: 0,
                peak_memory_bytes: 0,
                error: None,
            },
            logs: Vec::new(),
            ended: result,
        }
    }
}
