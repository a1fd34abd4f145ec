//! The [`Invoker`] of code-native flows: each `invoke(component, action, input)` runs
//! the action of a component the integration pins, in a sandbox of its own, and each
//! `invoke-flow` a child execution through the engine's launcher; every call is
//! recorded as a step (`component.action`, `flow:<name>`, then `...#2`, ...).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::executor::{FlowEngine, add_attempt, classify, recorded_value};
use super::launcher::{FlowCall, FlowLaunch, call_flow};
use super::logs::StepLogSink;
use super::plan::Plan;
use super::record::{InputSummary, StepError, StepKind, StepRecord, StepStatus};
use crate::capabilities::log::now_ms;
use crate::{
    Call, Capabilities, Data, ExecutionContext, GuestError, GuestErrorKind, Invoker, Limits,
    LogSink, Output, Returned, World,
};

/// Runs the `invoke` calls of one code-native flow execution.
pub(crate) struct FlowInvoker {
    engine: FlowEngine,
    plan: Plan,
    /// The execution's capabilities (its execution-scoped state included).
    caps: Capabilities,
    log: Arc<dyn LogSink>,
    limits: Limits,
    /// The execution's deadline (its flow's time limit): invoked actions get no more.
    deadline: Option<std::time::Instant>,
    /// Step runs left in the execution's budget.
    budget: AtomicUsize,
    calls: Mutex<HashMap<String, u32>>,
    records: Mutex<Vec<StepRecord>>,
}

impl FlowInvoker {
    pub(crate) fn new(
        engine: FlowEngine,
        plan: Plan,
        caps: Capabilities,
        log: Arc<dyn LogSink>,
        limits: Limits,
        deadline: Option<std::time::Instant>,
        budget: usize,
    ) -> Self {
        FlowInvoker {
            engine,
            plan,
            caps,
            log,
            limits,
            deadline,
            budget: AtomicUsize::new(budget),
            calls: Mutex::new(HashMap::new()),
            records: Mutex::new(Vec::new()),
        }
    }

    /// The steps recorded so far, in call order.
    pub(crate) fn take_records(&self) -> Vec<StepRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn step_key(&self, component: &str, action: &str) -> String {
        self.numbered(format!("{component}.{action}"))
    }

    /// `base` for its first call, then `base#2`, `base#3`, ...
    fn numbered(&self, base: String) -> String {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let count = calls.entry(base.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            base
        } else {
            format!("{base}#{count}")
        }
    }

    fn push(&self, record: StepRecord) {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }

    /// Takes one step run from the execution's budget.
    fn take_step(&self) -> Result<(), StepError> {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .map(|_| ())
            .map_err(|_| {
                StepError::new(
                    "limit",
                    format!(
                        "the execution ran more than {} steps",
                        self.engine.options().max_step_runs
                    ),
                )
            })
    }

    /// Runs an `invoke-flow` (or `invoke-flow-async`) call as a step keyed
    /// `flow:<name>` (`flow:<name>#2`, ...): the child's output (or, queued, its
    /// execution id as `{"executionId"}`) and the step's record.
    async fn flow_step(
        &self,
        caller: &ExecutionContext,
        name: &str,
        payload: String,
        synchronous: bool,
    ) -> Result<Output, GuestError> {
        let key = self.numbered(format!("flow:{name}"));
        let started_ms = now_ms();
        let started = Instant::now();
        let options = self.engine.options();
        let mut record = StepRecord {
            flow: Some(name.to_string()),
            input: Some(InputSummary::of(&payload, options.input_preview_bytes)),
            ..StepRecord::started(&key, StepKind::InvokeFlow, started_ms)
        };
        if let Err(error) = self.take_step() {
            return Err(self.refuse(record, started, error));
        }
        if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&payload) {
            let error = StepError::new(
                "invalid-input",
                format!("the payload for flow `{name}` is not JSON: {err}"),
            );
            return Err(self.refuse(record, started, error));
        }
        let launch = FlowLaunch {
            parent: ExecutionContext {
                step: Some(key.clone()),
                ..caller.clone()
            },
            flow: name.to_string(),
            payload,
            synchronous,
            deadline: self.deadline,
        };
        let FlowCall {
            child_execution_id,
            result,
        } = call_flow(options, &self.plan, launch).await;
        record.child_execution_id = child_execution_id;
        let outcome = match result {
            Ok(output) => {
                let value = match &output.data {
                    Data::Json(text) => {
                        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
                    }
                    Data::Bytes(bytes) => Value::String(format!("{} bytes", bytes.len())),
                };
                record.result = Some(
                    recorded_value(options, &caller.execution_id, &key, &Arc::new(value), None)
                        .await,
                );
                Ok(output)
            }
            Err(failed) => {
                record.status = StepStatus::Failed;
                record.error = Some(failed.error.clone());
                Err(to_guest_error(&failed.error, failed.retryable))
            }
        };
        record.ended_at_ms = now_ms();
        record.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.push(record);
        outcome
    }

    /// Records a call that failed before reaching a sandbox.
    fn refuse(&self, mut record: StepRecord, started: Instant, error: StepError) -> GuestError {
        record.status = StepStatus::Failed;
        record.error = Some(error.clone());
        record.ended_at_ms = now_ms();
        record.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.push(record);
        to_guest_error(&error, false)
    }
}

/// A step error as the `error` a flow receives from `invoke`: guest error kinds pass
/// through; sandbox failures become `retryable` when retrying can help, else `fatal`.
fn to_guest_error(error: &StepError, retryable: bool) -> GuestError {
    let kind = match error.kind.as_str() {
        "invalid-input" => GuestErrorKind::InvalidInput,
        "connection" => GuestErrorKind::Connection,
        "retryable" => GuestErrorKind::Retryable,
        "fatal" => GuestErrorKind::Fatal,
        _ if retryable => GuestErrorKind::Retryable,
        _ => GuestErrorKind::Fatal,
    };
    let passthrough = matches!(
        error.kind.as_str(),
        "invalid-input" | "connection" | "retryable" | "fatal"
    );
    let message = if passthrough {
        error.message.clone()
    } else {
        format!("{}: {}", error.kind, error.message)
    };
    GuestError {
        kind,
        message,
        connection: error.connection.clone(),
    }
}

#[async_trait]
impl Invoker for FlowInvoker {
    async fn invoke(
        &self,
        caller: &ExecutionContext,
        component: &str,
        action: &str,
        input: String,
    ) -> Result<Output, GuestError> {
        let key = self.step_key(component, action);
        let started_ms = now_ms();
        let started = Instant::now();
        let options = self.engine.options();
        let mut record = StepRecord {
            component: Some(component.to_string()),
            action: Some(action.to_string()),
            input: Some(InputSummary::of(&input, options.input_preview_bytes)),
            ..StepRecord::started(&key, StepKind::Invoke, started_ms)
        };
        if let Err(error) = self.take_step() {
            return Err(self.refuse(record, started, error));
        }
        let entry = match self.plan.inner.components.get(component) {
            Some(entry) if entry.component.world() == World::Component => entry.clone(),
            Some(_) => {
                let error = StepError::new(
                    "fatal",
                    format!("`{component}` is a code-native flow, not a component with actions"),
                );
                return Err(self.refuse(record, started, error));
            }
            None => {
                let error = StepError::new(
                    "fatal",
                    format!(
                        "component `{component}` is not pinned by integration `{}`",
                        self.plan.name()
                    ),
                );
                return Err(self.refuse(record, started, error));
            }
        };
        let Some(schema) = entry.manifest.actions.get(action) else {
            let error = StepError::new(
                "fatal",
                format!("component `{component}` has no action `{action}`"),
            );
            return Err(self.refuse(record, started, error));
        };
        if !schema.is_trivial() {
            let checked = serde_json::from_str::<Value>(&input)
                .map_err(|err| format!("the input is not JSON: {err}"))
                .and_then(|value| {
                    schema.check(&value).map_err(|problems| {
                        problems
                            .into_iter()
                            .map(|(pointer, message)| format!("{pointer}: {message}"))
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                });
            if let Err(problems) = checked {
                let error = StepError::new(
                    "invalid-input",
                    format!(
                        "the input does not match the schema of `{component}.{action}`: {problems}"
                    ),
                );
                return Err(self.refuse(record, started, error));
            }
        }

        let sink = Arc::new(StepLogSink::new(Arc::clone(&self.log)));
        let caps = Capabilities {
            log: sink.clone(),
            invoker: None,
            ..self.caps.clone()
        };
        let context = ExecutionContext {
            step: Some(key.clone()),
            attempt: 1,
            ..caller.clone()
        };
        let call = Call::Action {
            action: action.to_string(),
            input,
        };
        let call_started = Instant::now();
        let result = self
            .engine
            .runtime()
            .execute(
                &entry.component,
                call,
                context,
                &caps,
                &super::executor::limits_before(&self.limits, self.deadline),
            )
            .await;
        let (attempt, ended) = classify(result, 1, 0, call_started.elapsed());
        add_attempt(&mut record, attempt, sink.take());
        let outcome = match ended {
            Ok(Returned::Output(output)) => {
                let (value, text) = match &output.data {
                    Data::Json(text) => (
                        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())),
                        Some(text.clone()),
                    ),
                    Data::Bytes(bytes) => (
                        serde_json::json!({
                            "contentType": output.content_type.as_deref().unwrap_or("application/octet-stream"),
                            "bytes": bytes.len(),
                        }),
                        None,
                    ),
                };
                record.result = Some(
                    recorded_value(options, &caller.execution_id, &key, &Arc::new(value), text)
                        .await,
                );
                record.branch = output.branch.clone();
                Ok(output)
            }
            Ok(_) => {
                let error = StepError::new("invalid-output", "the action returned no output");
                record.status = StepStatus::Failed;
                record.error = Some(error.clone());
                Err(to_guest_error(&error, false))
            }
            Err((error, retryable)) => {
                record.status = StepStatus::Failed;
                record.error = Some(error.clone());
                Err(to_guest_error(&error, retryable))
            }
        };
        record.ended_at_ms = now_ms();
        record.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.push(record);
        outcome
    }

    async fn invoke_flow(
        &self,
        caller: &ExecutionContext,
        name: &str,
        payload: String,
    ) -> Result<Output, GuestError> {
        self.flow_step(caller, name, payload, true).await
    }

    async fn invoke_flow_async(
        &self,
        caller: &ExecutionContext,
        name: &str,
        payload: String,
    ) -> Result<String, GuestError> {
        let output = self.flow_step(caller, name, payload, false).await?;
        let queued = match &output.data {
            Data::Json(text) => serde_json::from_str::<Value>(text).ok(),
            Data::Bytes(_) => None,
        };
        queued
            .as_ref()
            .and_then(|value| value.get("executionId"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| GuestError::fatal(format!("flow `{name}` was queued without an id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_errors_map_to_guest_errors() {
        let error = to_guest_error(&StepError::new("retryable", "later"), false);
        assert_eq!(
            (error.kind, error.message.as_str()),
            (GuestErrorKind::Retryable, "later")
        );
        let error = to_guest_error(&StepError::new("timeout", "did not finish"), true);
        assert_eq!(error.kind, GuestErrorKind::Retryable);
        assert_eq!(error.message, "timeout: did not finish");
        let error = to_guest_error(&StepError::new("out-of-fuel", "ran out"), false);
        assert_eq!(error.kind, GuestErrorKind::Fatal);
    }
}
