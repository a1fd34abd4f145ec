//! The walk of one execution: the trigger, then each step in order (branches, loops,
//! stop, actions, flow calls, a code-native flow's sandbox), keeping the steps' slots,
//! the step-run count and the record; attempts and values are delegated.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;

use super::attempt::{
    ActionAttempts, AttemptError, Attempts, ONE_ATTEMPT, SandboxCall, SingleCall, run_attempts,
};
use super::flow_call::FlowAttempts;
use super::invoker::{FlowInvoker, InvokerEnv};
use super::options::{EngineOptions, RunEnv};
use super::values::{
    Slot, Values, body_value, check_input, code_flow_payload, data_value, header, http_response,
    loop_items, output_value, recorded_value, trigger_results,
};
use crate::capabilities::log::now_ms;
use crate::flow::catalog::CatalogEntry;
use crate::flow::definition::ErrorHandler;
use crate::flow::expression::{Operator, compare};
use crate::flow::launcher::FlowLaunch;
use crate::flow::plan::{
    ActionNode, BranchOnExpressionNode, BranchOnValueNode, CInput, ErrorPolicy, FlowBody, FlowPlan,
    IntegrationPlan, InvokeFlowNode, LoopNode, Node, Plan, StopNode, TriggerPlan,
};
use crate::flow::record::{
    ExecutionRecord, ExecutionStatus, FlowKind, FlowResponse, InputSummary, RecordedValue,
    StepError, StepErrorKind, StepKind, StepRecord, StepStatus, micros,
};
use crate::flow::state::ExecutionState;
use crate::flow::validate::TRIGGER_KEY;
use crate::{
    Call, Capabilities, ExecutionContext, HttpRequest, Output, Returned, Runtime, TriggerOutcome,
};

/// How a block of steps ended.
enum Control {
    Continue,
    Break,
    Stop(FlowResponse),
}

/// A step failed and the flow stops.
struct Failure {
    step: String,
    error: StepError,
}

/// The output of the last step that produced one: the response of a synchronous
/// execution unless a stop-execution step or the trigger set one.
struct LastOutput {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
    body: RecordedValue,
}

/// The HTTP shaping of an output: status, headers, content type.
type Shape = (Option<u16>, Vec<(String, String)>, Option<String>);

type BoxFuture<'s, T> = Pin<Box<dyn Future<Output = T> + Send + 's>>;

static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

fn execution_id() -> String {
    format!(
        "exec-{:x}-{:x}",
        now_ms(),
        EXECUTIONS.fetch_add(1, Ordering::Relaxed)
    )
}

/// The state of one execution.
pub(super) struct Run<'a> {
    runtime: &'a Runtime,
    options: &'a EngineOptions,
    plan: &'a Plan,
    flow: &'a FlowPlan,
    env: &'a RunEnv,
    pub(super) context: ExecutionContext,
    pub(super) caps: Capabilities,
    /// What inputs read: config values and the steps' slots.
    pub(super) values: Values<'a>,
    steps: Vec<StepRecord>,
    iteration: Vec<u32>,
    step_runs: usize,
    last: Option<LastOutput>,
    /// The last output in the current loop iteration.
    iteration_last: Option<Arc<Value>>,
    trigger_response: Option<FlowResponse>,
    /// The trigger answered the request instead of accepting it.
    trigger_responded: bool,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        runtime: &'a Runtime,
        options: &'a EngineOptions,
        plan: &'a Plan,
        flow: &'a FlowPlan,
        env: &'a RunEnv,
    ) -> Self {
        let mut context = env.context.clone();
        if context.execution_id.is_empty() {
            context.execution_id = execution_id();
        }
        if context.started_at_ms == 0 {
            context.started_at_ms = now_ms();
        }
        context.flow_name = flow.key.to_string();
        context.step = None;
        context.attempt = 1;
        let caps = Capabilities {
            state: Arc::new(ExecutionState::new(Arc::clone(&env.capabilities.state))),
            invoker: None,
            ..env.capabilities.clone()
        };
        let values = Values::new(
            &plan.inner.config_vars,
            env.capabilities.config.as_ref(),
            flow.slots,
        );
        Run {
            runtime,
            options,
            plan,
            flow,
            env,
            context,
            caps,
            values,
            steps: Vec::new(),
            iteration: Vec::new(),
            step_runs: 0,
            last: None,
            iteration_last: None,
            trigger_response: None,
            trigger_responded: false,
        }
    }

    fn integration(&self) -> &'a IntegrationPlan {
        &self.plan.inner
    }

    pub(super) async fn execute(&mut self, request: HttpRequest) -> ExecutionRecord {
        let started_ms = now_ms();
        let started = Instant::now();
        let flow = self.flow;
        let kind = match flow.body {
            FlowBody::Steps(_) => FlowKind::Declarative,
            FlowBody::Code { .. } => FlowKind::Code,
        };
        let outcome = match self.trigger(request).await {
            Err(failure) => Err(failure),
            Ok(Some(response)) => Ok(Some(response)),
            Ok(None) => match &flow.body {
                FlowBody::Steps(nodes) => match self.block(nodes).await {
                    Ok(Control::Stop(response)) => Ok(Some(response)),
                    Ok(Control::Continue | Control::Break) => Ok(None),
                    Err(failure) => Err(failure),
                },
                FlowBody::Code { key, entry } => self.code(key, entry).await.map(|()| None),
            },
        };
        let (status, failed_step, error, response) = match outcome {
            Ok(stopped) => (
                ExecutionStatus::Succeeded,
                None,
                None,
                stopped
                    .or_else(|| self.trigger_response.take())
                    .or_else(|| {
                        self.last.take().map(|last| FlowResponse {
                            status: last.status.unwrap_or(200),
                            headers: last.headers,
                            content_type: last.content_type,
                            body: Some(last.body),
                        })
                    }),
            ),
            Err(failure) => (
                ExecutionStatus::Failed,
                Some(failure.step),
                Some(failure.error),
                None,
            ),
        };
        let steps = std::mem::take(&mut self.steps);
        ExecutionRecord {
            execution_id: self.context.execution_id.clone(),
            integration: self.integration().name.clone(),
            flow: flow.key.to_string(),
            kind,
            status,
            started_at_ms: started_ms,
            ended_at_ms: now_ms(),
            duration_us: micros(started.elapsed()),
            failed_step,
            error,
            response,
            trigger_responded: self.trigger_responded,
            fuel_used: steps.iter().map(|step| step.fuel_used).sum(),
            steps,
        }
    }

    fn count_step(&mut self, key: &str) -> Result<(), Failure> {
        if let Some(deadline) = self.env.deadline
            && std::time::Instant::now() >= deadline
        {
            return Err(Failure {
                step: key.to_string(),
                error: StepError::new(
                    StepErrorKind::TimeLimit,
                    "the execution reached its flow's time limit before this step",
                ),
            });
        }
        self.step_runs += 1;
        if self.step_runs > self.options.max_step_runs {
            return Err(Failure {
                step: key.to_string(),
                error: StepError::new(
                    StepErrorKind::Limit,
                    format!(
                        "the execution ran more than {} steps",
                        self.options.max_step_runs
                    ),
                ),
            });
        }
        Ok(())
    }

    /// The context of step `key`'s calls (each attempt sets its own `attempt`).
    fn step_context(&self, key: &str) -> ExecutionContext {
        ExecutionContext {
            step: Some(key.to_string()),
            ..self.context.clone()
        }
    }

    fn new_record(&self, key: &str, kind: StepKind, started_ms: u64) -> StepRecord {
        StepRecord {
            iteration: self.iteration.clone(),
            ..StepRecord::started(key, kind, started_ms)
        }
    }

    // ----- the trigger -----

    /// Runs the trigger. `Some(response)` ends the execution with that response (the
    /// trigger answered the request itself).
    async fn trigger(&mut self, request: HttpRequest) -> Result<Option<FlowResponse>, Failure> {
        let started_ms = now_ms();
        let started = Instant::now();
        let mut record = self.new_record(TRIGGER_KEY, StepKind::Trigger, started_ms);
        let fail = |this: &mut Self, mut record: StepRecord, error: StepError| {
            record.status = StepStatus::Failed;
            record.error = Some(error.clone());
            this.steps.push(record.finished(started));
            Err(Failure {
                step: TRIGGER_KEY.to_string(),
                error,
            })
        };
        let flow = self.flow;
        match &flow.trigger {
            TriggerPlan::Webhook => {
                let body = match body_value(&request.body, header(&request, "content-type")) {
                    Ok(body) => body,
                    Err(error) => return fail(self, record, error),
                };
                let results = Arc::new(trigger_results(&request, body));
                record.result = Some(self.recorded(&results, TRIGGER_KEY).await);
                self.values.slots[0].results = Some(results);
                self.steps.push(record.finished(started));
                Ok(None)
            }
            TriggerPlan::Component {
                component_key,
                entry,
                trigger,
                inputs,
            } => {
                record.component = Some(component_key.to_string());
                record.action = Some(trigger.clone());
                let inputs = match self.values.write_fields(inputs) {
                    Ok(inputs) => inputs,
                    Err(error) => return fail(self, record, error),
                };
                record.input = Some(InputSummary::of(&inputs, self.options.input_preview_bytes));
                let call = Call::Trigger {
                    trigger: trigger.clone(),
                    request: request.clone(),
                    inputs,
                };
                let context = self.step_context(TRIGGER_KEY);
                let mut attempts = SingleCall {
                    sandbox: self.sandbox(entry, &self.caps, &context),
                    call,
                };
                let ended = self
                    .run_attempts(&mut attempts, &ONE_ATTEMPT, &mut record)
                    .await;
                match ended {
                    Ok(Returned::Trigger(TriggerOutcome::Accept {
                        payload,
                        branch,
                        response,
                    })) => {
                        let body = data_value(payload, None);
                        let results = Arc::new(trigger_results(&request, body));
                        record.result = Some(self.recorded(&results, TRIGGER_KEY).await);
                        record.branch = branch.clone();
                        self.values.slots[0].results = Some(results);
                        self.values.slots[0].branch = branch.map(Value::String);
                        if let Some(response) = response {
                            self.trigger_response = Some(http_response(response));
                        }
                        self.steps.push(record.finished(started));
                        Ok(None)
                    }
                    Ok(Returned::Trigger(TriggerOutcome::Respond { response })) => {
                        let response = http_response(response);
                        record.result = response.body.clone();
                        self.steps.push(record.finished(started));
                        self.trigger_responded = true;
                        Ok(Some(response))
                    }
                    Ok(_) => fail(
                        self,
                        record,
                        StepError::new(
                            StepErrorKind::InvalidOutput,
                            "the trigger returned no trigger outcome",
                        ),
                    ),
                    Err(failed) => fail(self, record, failed.error),
                }
            }
        }
    }

    // ----- blocks and control steps -----

    fn block<'s>(&'s mut self, nodes: &'s [Node]) -> BoxFuture<'s, Result<Control, Failure>> {
        Box::pin(async move {
            for node in nodes {
                let control = self.node(node).await?;
                if !matches!(control, Control::Continue) {
                    return Ok(control);
                }
            }
            Ok(Control::Continue)
        })
    }

    /// One step, as a boxed future built in this (plain) function. Steps nest (a
    /// branch's steps run inside the branch's future), and polling recurses once per
    /// level: built inline, every level's poll frame would make room for the largest
    /// step future (an action's), which a debug build keeps on the stack, and 64
    /// levels of steps would overflow a 2 MiB stack. Here each level costs a few
    /// small frames.
    fn node<'s>(&'s mut self, node: &'s Node) -> BoxFuture<'s, Result<Control, Failure>> {
        match node {
            Node::Action(action) => Box::pin(async move {
                self.action(action).await?;
                Ok(Control::Continue)
            }),
            Node::BranchOnValue(branch) => Box::pin(self.branch_on_value(branch)),
            Node::BranchOnExpression(branch) => Box::pin(self.branch_on_expression(branch)),
            Node::LoopOverItems(node) => Box::pin(self.run_loop(node, StepKind::LoopOverItems)),
            Node::LoopNTimes(node) => Box::pin(self.run_loop(node, StepKind::LoopNTimes)),
            Node::Break { key } => {
                let ended = self.count_step(key).map(|()| {
                    let record = self.new_record(key, StepKind::BreakLoop, now_ms());
                    self.steps.push(record);
                    Control::Break
                });
                Box::pin(std::future::ready(ended))
            }
            Node::Stop(stop) => Box::pin(self.stop(stop)),
            Node::InvokeFlow(node) => Box::pin(async move {
                self.invoke_flow(node).await?;
                Ok(Control::Continue)
            }),
        }
    }

    /// Records a branch step, sets its result and runs the chosen branch.
    async fn take_branch(
        &mut self,
        slot: usize,
        key: &str,
        kind: StepKind,
        name: &str,
        steps: &[Node],
        started_ms: u64,
    ) -> Result<Control, Failure> {
        let name_value = Value::String(name.to_string());
        let mut record = self.new_record(key, kind, started_ms);
        record.branch = Some(name.to_string());
        record.result = Some(RecordedValue::Inline(Arc::new(name_value.clone())));
        self.values.slots[slot].results = Some(Arc::new(name_value.clone()));
        self.values.slots[slot].branch = Some(name_value);
        self.steps.push(record);
        self.block(steps).await
    }

    fn control_failure(
        &mut self,
        key: &str,
        kind: StepKind,
        started_ms: u64,
        error: StepError,
    ) -> Failure {
        let mut record = self.new_record(key, kind, started_ms);
        record.status = StepStatus::Failed;
        record.error = Some(error.clone());
        self.steps.push(record);
        Failure {
            step: key.to_string(),
            error,
        }
    }

    async fn branch_on_value(&mut self, node: &BranchOnValueNode) -> Result<Control, Failure> {
        self.count_step(&node.key)?;
        let started_ms = now_ms();
        let kind = StepKind::BranchOnValue;
        let value = self
            .values
            .resolve(&node.value)
            .map_err(|error| self.control_failure(&node.key, kind, started_ms, error))?;
        let mut chosen = None;
        for (name, candidate, steps) in &node.branches {
            let candidate = self
                .values
                .resolve(candidate)
                .map_err(|error| self.control_failure(&node.key, kind, started_ms, error))?;
            if compare(Operator::Equal, value.as_ref(), candidate.as_ref()).unwrap_or(false) {
                chosen = Some((name.as_ref(), steps.as_slice()));
                break;
            }
        }
        let (name, steps) = chosen.unwrap_or(("Else", &node.else_steps));
        self.take_branch(node.slot, &node.key, kind, name, steps, started_ms)
            .await
    }

    async fn branch_on_expression(
        &mut self,
        node: &BranchOnExpressionNode,
    ) -> Result<Control, Failure> {
        self.count_step(&node.key)?;
        let started_ms = now_ms();
        let kind = StepKind::BranchOnExpression;
        let mut chosen = None;
        for (name, condition, steps) in &node.branches {
            let verdict = condition.evaluate(&mut |term: &CInput| self.values.resolve(term));
            let verdict = match verdict {
                Ok(Ok(verdict)) => verdict,
                Ok(Err(error)) => {
                    let error = StepError::new(
                        StepErrorKind::Expression,
                        format!("condition of branch `{name}`: {error}"),
                    );
                    return Err(self.control_failure(&node.key, kind, started_ms, error));
                }
                Err(error) => return Err(self.control_failure(&node.key, kind, started_ms, error)),
            };
            if verdict {
                chosen = Some((name.as_ref(), steps.as_slice()));
                break;
            }
        }
        let (name, steps) = chosen.unwrap_or(("Else", &node.else_steps));
        self.take_branch(node.slot, &node.key, kind, name, steps, started_ms)
            .await
    }

    async fn run_loop(&mut self, node: &LoopNode, kind: StepKind) -> Result<Control, Failure> {
        self.count_step(&node.key)?;
        let started_ms = now_ms();
        let started = Instant::now();
        let source = self
            .values
            .resolve(&node.source)
            .map_err(|error| self.control_failure(&node.key, kind, started_ms, error))?;
        let items = loop_items(kind == StepKind::LoopOverItems, source)
            .map_err(|error| self.control_failure(&node.key, kind, started_ms, error))?;
        // The loop's record comes before its iterations' records.
        let record_index = self.steps.len();
        self.steps
            .push(self.new_record(&node.key, kind, started_ms));
        let outer_last = self.iteration_last.take();
        let mut results = Vec::with_capacity(items.size().min(1024));
        let mut ended = Ok(Control::Continue);
        for (index, item) in items.values().enumerate() {
            for slot in node.body_slots.clone() {
                self.values.slots[slot] = Slot::default();
            }
            let slot = &mut self.values.slots[node.slot];
            slot.item = Some(Arc::new(item));
            slot.index = Some(Value::from(index));
            self.iteration
                .push(u32::try_from(index).unwrap_or(u32::MAX));
            let control = self.block(&node.body).await;
            self.iteration.pop();
            results.push(
                self.iteration_last
                    .take()
                    .map_or(Value::Null, |value| (*value).clone()),
            );
            match control {
                Ok(Control::Continue) => {}
                Ok(Control::Break) => break,
                other => {
                    ended = other;
                    break;
                }
            }
        }
        let slot = &mut self.values.slots[node.slot];
        slot.item = None;
        slot.index = None;
        let results = Arc::new(Value::Array(results));
        let recorded = self.recorded(&results, &node.key).await;
        let placeholder = self.new_record(&node.key, kind, started_ms);
        let mut record = std::mem::replace(&mut self.steps[record_index], placeholder);
        record.result = Some(recorded.clone());
        if let Err(failure) = &ended {
            record.status = StepStatus::Failed;
            record.error = Some(StepError::new(
                failure.error.kind,
                format!("step `{}` failed: {}", failure.step, failure.error.message),
            ));
        }
        self.steps[record_index] = record.finished(started);
        self.values.slots[node.slot].results = Some(Arc::clone(&results));
        self.iteration_last = outer_last;
        self.set_last(Arc::clone(&results), recorded, None);
        match ended {
            Ok(Control::Break) => Ok(Control::Continue),
            other => other,
        }
    }

    async fn stop(&mut self, node: &StopNode) -> Result<Control, Failure> {
        self.count_step(&node.key)?;
        let started_ms = now_ms();
        let kind = StepKind::StopExecution;
        let response = match self.values.stop_response(node) {
            Ok(response) => response,
            Err(error) => return Err(self.control_failure(&node.key, kind, started_ms, error)),
        };
        let (response, body) = response;
        let mut response = response;
        if let Some(body) = body {
            let body = Arc::new(body);
            response.body = Some(self.recorded(&body, &node.key).await);
        }
        let mut record = self.new_record(&node.key, kind, started_ms);
        record.result = response.body.clone();
        self.steps.push(record);
        Ok(Control::Stop(response))
    }

    // ----- actions and flow calls -----

    async fn action(&mut self, node: &ActionNode) -> Result<(), Failure> {
        self.count_step(&node.key)?;
        let started_ms = now_ms();
        let started = Instant::now();
        let mut record = self.new_record(&node.key, StepKind::Action, started_ms);
        record.component = Some(node.component_key.to_string());
        record.action = Some(node.action.clone());
        let ended = match self.action_input(node) {
            Err(error) => Err(error),
            Ok(input) => {
                record.input = Some(InputSummary::of(&input, self.options.input_preview_bytes));
                let context = self.step_context(&node.key);
                let mut attempts = ActionAttempts {
                    sandbox: self.sandbox(&node.entry, &self.caps, &context),
                    action: &node.action,
                    input,
                };
                self.run_attempts(&mut attempts, &node.policy, &mut record)
                    .await
                    .map_err(|failed| failed.error)
            }
        };
        self.step_ended((&node.key, node.slot, node.policy), record, started, ended)
            .await
    }

    /// Calls the flow of an `invokeFlow` step, again after a retryable failure as the
    /// step's policy says. Each call is an attempt; a retry starts a new child.
    async fn invoke_flow(&mut self, node: &InvokeFlowNode) -> Result<(), Failure> {
        self.count_step(&node.key)?;
        let started_ms = now_ms();
        let started = Instant::now();
        let mut record = self.new_record(&node.key, StepKind::InvokeFlow, started_ms);
        record.flow = Some(node.flow.to_string());
        let ended = match self.values.resolve(&node.payload) {
            Err(error) => Err(error),
            Ok(payload) => {
                let payload = payload.unwrap_or(Value::Null).to_string();
                record.input = Some(InputSummary::of(&payload, self.options.input_preview_bytes));
                let mut attempts = FlowAttempts {
                    options: self.options,
                    plan: self.plan,
                    launch: FlowLaunch {
                        parent: self.step_context(&node.key),
                        flow: node.flow.to_string(),
                        payload,
                        synchronous: node.synchronous,
                        deadline: self.env.deadline,
                    },
                    child_execution_id: None,
                };
                let ended = self
                    .run_attempts(&mut attempts, &node.policy, &mut record)
                    .await;
                record.child_execution_id = attempts.child_execution_id;
                ended.map_err(|failed| failed.error)
            }
        };
        self.step_ended((&node.key, node.slot, node.policy), record, started, ended)
            .await
    }

    /// Records how an action or `invokeFlow` step ended (`step` is its key, slot and
    /// error policy): its output becomes its result, or its error fails the flow
    /// unless the policy ignores it.
    async fn step_ended(
        &mut self,
        step: (&str, usize, ErrorPolicy),
        mut record: StepRecord,
        started: Instant,
        ended: Result<Output, StepError>,
    ) -> Result<(), Failure> {
        let (key, slot_index, policy) = step;
        // An output that cannot be read as a value fails the step like any error, so
        // the step's policy applies to it.
        let error = match ended {
            Ok(mut output) => {
                let branch = output.branch.take();
                match self.output_result(output, key).await {
                    Ok((value, recorded, shape)) => {
                        record.result = Some(recorded.clone());
                        record.branch = branch.clone();
                        let slot = &mut self.values.slots[slot_index];
                        slot.results = Some(Arc::clone(&value));
                        slot.branch = branch.map(Value::String);
                        self.set_last(value, recorded, Some(shape));
                        self.steps.push(record.finished(started));
                        return Ok(());
                    }
                    Err(error) => error,
                }
            }
            Err(error) => error,
        };
        let ignore = match policy.handler {
            ErrorHandler::Fail => false,
            ErrorHandler::Ignore => true,
            ErrorHandler::Retry => policy.ignore_final_error,
        };
        record.error = Some(error.clone());
        if !ignore {
            record.status = StepStatus::Failed;
            self.steps.push(record.finished(started));
            return Err(Failure {
                step: key.to_string(),
                error,
            });
        }
        record.status = StepStatus::Ignored;
        let value = Arc::new(error.to_result());
        let recorded = RecordedValue::Inline(Arc::clone(&value));
        record.result = Some(recorded.clone());
        self.values.slots[slot_index].results = Some(Arc::clone(&value));
        self.set_last(value, recorded, None);
        self.steps.push(record.finished(started));
        Ok(())
    }

    /// The sandbox of a step of this execution, with `caps`.
    fn sandbox<'s>(
        &'s self,
        entry: &'s CatalogEntry,
        caps: &'s Capabilities,
        context: &'s ExecutionContext,
    ) -> SandboxCall<'s> {
        SandboxCall {
            runtime: self.runtime,
            component: &entry.component,
            caps,
            log: &self.env.capabilities.log,
            context,
            limits: &self.env.limits,
            deadline: self.env.deadline,
        }
    }

    /// Runs a step's attempts under `policy` within the execution's deadline.
    async fn run_attempts<A: Attempts>(
        &self,
        attempts: &mut A,
        policy: &ErrorPolicy,
        record: &mut StepRecord,
    ) -> Result<A::Output, AttemptError> {
        let sleeper = self.options.sleeper.as_ref();
        run_attempts(attempts, policy, self.env.deadline, sleeper, record).await
    }

    fn set_last(&mut self, value: Arc<Value>, body: RecordedValue, shape: Option<Shape>) {
        let (status, headers, content_type) = shape.unwrap_or((None, Vec::new(), None));
        self.iteration_last = Some(value);
        self.last = Some(LastOutput {
            status,
            headers,
            content_type,
            body,
        });
    }

    /// A step's output as the value later steps reference, as the record keeps it,
    /// and its HTTP shaping.
    async fn output_result(
        &self,
        output: Output,
        key: &str,
    ) -> Result<(Arc<Value>, RecordedValue, Shape), StepError> {
        let Output {
            data,
            content_type,
            status,
            headers,
            ..
        } = output;
        let execution_id = &self.context.execution_id;
        let (value, recorded) = output_value(
            self.options,
            execution_id,
            key,
            data,
            content_type.as_deref(),
        )
        .await?;
        Ok((value, recorded, (status, headers, content_type)))
    }

    /// A value as the record keeps it: inline, or stored when large.
    async fn recorded(&self, value: &Arc<Value>, key: &str) -> RecordedValue {
        recorded_value(self.options, &self.context.execution_id, key, value, None).await
    }

    // ----- code-native flows -----

    async fn code(&mut self, key: &Arc<str>, entry: &CatalogEntry) -> Result<(), Failure> {
        self.count_step(key)?;
        let started_ms = now_ms();
        let started = Instant::now();
        let mut record = self.new_record(key, StepKind::Code, started_ms);
        record.component = Some(key.to_string());
        let trigger = &self.values.slots[0];
        let payload = match trigger.results.as_deref() {
            Some(results) => code_flow_payload(results, trigger.branch.as_ref()).to_string(),
            None => "null".to_string(),
        };
        record.input = Some(InputSummary::of(&payload, self.options.input_preview_bytes));
        let invoker = Arc::new(FlowInvoker::new(
            self.runtime.clone(),
            self.options.clone(),
            self.plan.clone(),
            InvokerEnv {
                caps: self.caps.clone(),
                log: Arc::clone(&self.env.capabilities.log),
                limits: self.env.limits.clone(),
                deadline: self.env.deadline,
                budget: self.options.max_step_runs.saturating_sub(self.step_runs),
            },
        ));
        let caps = Capabilities {
            invoker: Some(invoker.clone()),
            ..self.caps.clone()
        };
        let mut attempts = SingleCall {
            sandbox: self.sandbox(entry, &caps, &self.context),
            call: Call::FlowExecution { payload },
        };
        let ended = self
            .run_attempts(&mut attempts, &ONE_ATTEMPT, &mut record)
            .await;
        let invoked = invoker.take_records();
        self.step_runs += invoked.len();
        let record_index = self.steps.len();
        self.steps.push(record);
        self.steps.extend(invoked);
        let placeholder = self.new_record(key, StepKind::Code, started_ms);
        let mut record = std::mem::replace(&mut self.steps[record_index], placeholder);
        let ended = match ended {
            Ok(Returned::Output(output)) => self.output_result(output, key).await,
            Ok(_) => Err(StepError::new(
                StepErrorKind::InvalidOutput,
                "the flow returned no output",
            )),
            Err(failed) => Err(failed.error),
        };
        let result = match ended {
            Ok((value, recorded, shape)) => {
                record.result = Some(recorded.clone());
                self.set_last(value, recorded, Some(shape));
                Ok(())
            }
            Err(error) => {
                record.status = StepStatus::Failed;
                record.error = Some(error.clone());
                // An error passed through unchanged from a failed `invoke` names that
                // call as the failing step.
                let step = self.steps[record_index + 1..]
                    .iter()
                    .rev()
                    .find(|step| step.status == StepStatus::Failed)
                    .filter(|step| {
                        step.error.as_ref().is_some_and(|inner| {
                            inner.kind == error.kind && inner.message == error.message
                        })
                    })
                    .map_or_else(|| key.to_string(), |step| step.key.clone());
                Err(Failure { step, error })
            }
        };
        self.steps[record_index] = record.finished(started);
        result
    }

    // ----- inputs -----

    /// The JSON input of an action step, checked against the action's schema when the
    /// schema is not trivially satisfied.
    fn action_input(&self, node: &ActionNode) -> Result<String, StepError> {
        if node.schema.is_trivial() {
            return self.values.write_fields(&node.inputs);
        }
        let value = self.values.resolve_fields(&node.inputs)?;
        check_input(&node.schema, &value, &node.component_key, &node.action)?;
        Ok(value.to_string())
    }
}
