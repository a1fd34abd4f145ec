//! The [`Invoker`] of code-native flows: each `invoke(component, action, input)` runs
//! the action of a component the integration pins, and each `invoke-flow` a child
//! execution, through the same attempt code as declarative steps; every call is
//! recorded as a step (`component.action`, `flow:<name>`, then `...#2`, ...).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::attempt::{
    ActionAttempts, AttemptError, Attempts, ONE_ATTEMPT, SandboxCall, run_attempts,
};
use super::flow_call::FlowAttempts;
use super::options::EngineOptions;
use super::values::{check_input, output_value, schema_error};
use crate::capabilities::log::now_ms;
use crate::flow::launcher::FlowLaunch;
use crate::flow::plan::Plan;
use crate::flow::record::{
    InputSummary, StepError, StepErrorKind, StepKind, StepRecord, StepStatus,
};
use crate::{
    Capabilities, Data, ExecutionContext, GuestError, Invoker, Limits, LogSink, Output, Runtime,
    World,
};

/// Runs the `invoke` calls of one code-native flow execution.
pub(crate) struct FlowInvoker {
    runtime: Runtime,
    options: EngineOptions,
    plan: Plan,
    /// The execution's capabilities (its execution-scoped state included).
    caps: Capabilities,
    log: Arc<dyn LogSink>,
    limits: Limits,
    /// The execution's deadline (its flow's time limit): invoked actions get no more.
    deadline: Option<Instant>,
    /// Step runs left in the execution's budget.
    budget: AtomicUsize,
    calls: Mutex<HashMap<String, u32>>,
    records: Mutex<Vec<StepRecord>>,
}

/// What a code-native flow's execution hands its invoker.
pub(crate) struct InvokerEnv {
    pub caps: Capabilities,
    pub log: Arc<dyn LogSink>,
    pub limits: Limits,
    pub deadline: Option<Instant>,
    /// Step runs left in the execution's budget.
    pub budget: usize,
}

impl FlowInvoker {
    pub(crate) fn new(
        runtime: Runtime,
        options: EngineOptions,
        plan: Plan,
        env: InvokerEnv,
    ) -> Self {
        FlowInvoker {
            runtime,
            options,
            plan,
            caps: Capabilities {
                invoker: None,
                ..env.caps
            },
            log: env.log,
            limits: env.limits,
            deadline: env.deadline,
            budget: AtomicUsize::new(env.budget),
            calls: Mutex::new(HashMap::new()),
            records: Mutex::new(Vec::new()),
        }
    }

    /// The steps recorded so far, in call order.
    pub(crate) fn take_records(&self) -> Vec<StepRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(PoisonError::into_inner))
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

    /// A started record of call `key` with its input, once the execution's budget of
    /// step runs has room for it (else the call fails, recorded).
    fn start(&self, key: &str, kind: StepKind, input: &str) -> Result<Pending, GuestError> {
        let call = Pending {
            record: StepRecord {
                input: Some(InputSummary::of(input, self.options.input_preview_bytes)),
                ..StepRecord::started(key, kind, now_ms())
            },
            started: Instant::now(),
        };
        let taken = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            });
        if taken.is_err() {
            let error = StepError::new(
                StepErrorKind::Limit,
                format!(
                    "the execution ran more than {} steps",
                    self.options.max_step_runs
                ),
            );
            return Err(self.refuse(call, error));
        }
        Ok(call)
    }

    /// Records a call that failed before reaching a sandbox or a launcher.
    fn refuse(&self, call: Pending, error: StepError) -> GuestError {
        let failed = AttemptError {
            error,
            retryable: false,
        };
        self.keep(call, Some(&failed.error));
        failed.to_guest_error()
    }

    /// Runs `attempts` once for `call`, shapes its output as the record keeps it (bytes
    /// as `{contentType, base64}`, like every step's result), and records the call.
    async fn run<A: Attempts<Output = Output>>(
        &self,
        caller: &ExecutionContext,
        mut call: Pending,
        attempts: &mut A,
    ) -> (Pending, Result<Output, AttemptError>) {
        let sleeper = self.options.sleeper.as_ref();
        let record = &mut call.record;
        let ended = match run_attempts(attempts, &ONE_ATTEMPT, self.deadline, sleeper, record).await
        {
            Ok(output) => output_value(
                &self.options,
                &caller.execution_id,
                &record.key,
                output.data.clone(),
                output.content_type.as_deref(),
            )
            .await
            .map(|(_, recorded)| {
                record.result = Some(recorded);
                record.branch = output.branch.clone();
                output
            })
            .map_err(|error| AttemptError {
                error,
                retryable: false,
            }),
            Err(failed) => Err(failed),
        };
        (call, ended)
    }

    /// Ends and keeps the record of a call; a failure becomes the flow's guest error.
    fn finish(
        &self,
        call: Pending,
        ended: Result<Output, AttemptError>,
    ) -> Result<Output, GuestError> {
        self.keep(call, ended.as_ref().err().map(|failed| &failed.error));
        ended.map_err(|failed| failed.to_guest_error())
    }

    /// Ends the record of a call, failed with `error` if there is one, and keeps it.
    fn keep(&self, call: Pending, error: Option<&StepError>) {
        let mut record = call.record;
        if let Some(error) = error {
            record.status = StepStatus::Failed;
            record.error = Some(error.clone());
        }
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record.finished(call.started));
    }

    /// Runs an `invoke-flow` (or `invoke-flow-async`) call as a step keyed
    /// `flow:<name>` (`flow:<name>#2`, ...): the child's output (or, queued, its
    /// execution id as `{"executionId"}`).
    async fn flow_step(
        &self,
        caller: &ExecutionContext,
        name: &str,
        payload: String,
        synchronous: bool,
    ) -> Result<Output, GuestError> {
        let key = self.numbered(format!("flow:{name}"));
        let mut call = self.start(&key, StepKind::InvokeFlow, &payload)?;
        call.record.flow = Some(name.to_string());
        if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&payload) {
            let error = StepError::new(
                StepErrorKind::InvalidInput,
                format!("the payload for flow `{name}` is not JSON: {err}"),
            );
            return Err(self.refuse(call, error));
        }
        let mut attempts = FlowAttempts {
            options: &self.options,
            plan: &self.plan,
            launch: FlowLaunch {
                parent: ExecutionContext {
                    step: Some(key),
                    ..caller.clone()
                },
                flow: name.to_string(),
                payload,
                synchronous,
                deadline: self.deadline,
            },
            child_execution_id: None,
        };
        let (mut call, ended) = self.run(caller, call, &mut attempts).await;
        call.record.child_execution_id = attempts.child_execution_id;
        self.finish(call, ended)
    }
}

/// A call being recorded, and when it started.
struct Pending {
    record: StepRecord,
    started: Instant,
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
        let key = self.numbered(format!("{component}.{action}"));
        let mut call = self.start(&key, StepKind::Invoke, &input)?;
        call.record.component = Some(component.to_string());
        call.record.action = Some(action.to_string());
        let entry = match self.plan.inner.components.get(component) {
            Some(entry) if entry.component.world() == World::Component => entry,
            Some(_) => {
                let error = StepError::new(
                    StepErrorKind::Fatal,
                    format!("`{component}` is a code-native flow, not a component with actions"),
                );
                return Err(self.refuse(call, error));
            }
            None => {
                let error = StepError::new(
                    StepErrorKind::Fatal,
                    format!(
                        "component `{component}` is not pinned by integration `{}`",
                        self.plan.name()
                    ),
                );
                return Err(self.refuse(call, error));
            }
        };
        let Some(schema) = entry.manifest.actions.get(action) else {
            let error = StepError::new(
                StepErrorKind::Fatal,
                format!("component `{component}` has no action `{action}`"),
            );
            return Err(self.refuse(call, error));
        };
        if !schema.is_trivial() {
            let checked = match serde_json::from_str::<Value>(&input) {
                Ok(value) => check_input(schema, &value, component, action),
                Err(err) => Err(schema_error(
                    component,
                    action,
                    &format!("the input is not JSON: {err}"),
                )),
            };
            if let Err(error) = checked {
                return Err(self.refuse(call, error));
            }
        }
        let context = ExecutionContext {
            step: Some(key),
            ..caller.clone()
        };
        let mut attempts = ActionAttempts {
            sandbox: SandboxCall {
                runtime: &self.runtime,
                component: &entry.component,
                caps: &self.caps,
                log: &self.log,
                context: &context,
                limits: &self.limits,
                deadline: self.deadline,
            },
            action,
            input,
        };
        let (call, ended) = self.run(caller, call, &mut attempts).await;
        self.finish(call, ended)
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
