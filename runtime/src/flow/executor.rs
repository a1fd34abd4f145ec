//! The flow engine: runs one execution of a compiled flow. The trigger runs first,
//! then each step in order, each action in a sandbox of its own through
//! [`Runtime::execute`], with branches, loops, error handling and the execution
//! record; a code-native flow runs as one sandbox whose `invoke` calls become steps.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::catalog::CatalogEntry;
use super::expression::{Operator, compare};
use super::invoker::FlowInvoker;
use super::launcher::{FlowCall, FlowLaunch, FlowLauncher, call_flow};
use super::logs::StepLogSink;
use super::plan::{
    ActionNode, BranchOnExpressionNode, BranchOnValueNode, CInput, CPart, CRef, ErrorPolicy,
    Fields, FlowBody, FlowPlan, IntegrationPlan, InvokeFlowNode, LoopNode, Node, Plan, StopNode,
    TriggerPlan,
};
use super::record::{
    AttemptRecord, ExecutionRecord, ExecutionStatus, FlowKind, FlowResponse, InputSummary,
    MemoryResultStore, RecordedValue, ResultStore, StepError, StepKind, StepRecord, StepStatus,
};
use super::reference::{RefField, lookup};
use super::state::ExecutionState;
use super::template::append_value;
use super::validate::{
    DEFAULT_MAX_STEP_RUNS, TRIGGER_KEY, loop_count, response_headers, response_status,
};
use crate::capabilities::log::now_ms;
use crate::{
    Call, Capabilities, Data, ExecuteError, ExecutionContext, ExecutionReport, GuestError,
    GuestErrorKind, HttpRequest, HttpResponse, Limits, Outcome, Output, Returned, Runtime,
    TriggerOutcome,
};

/// Waits between retries. Tests substitute one that records the delays instead.
#[async_trait]
pub trait Sleeper: Send + Sync {
    async fn sleep(&self, duration: Duration);
}

/// Sleeps with tokio.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Settings of the engine, the same for every execution.
#[derive(Clone)]
pub struct EngineOptions {
    /// Most step runs in one execution (every step of every iteration counts);
    /// default [`DEFAULT_MAX_STEP_RUNS`]. Compile plans for this engine with
    /// [`compile_with`](super::compile_with) and the same number, so that a loop it
    /// cannot run is refused at validation.
    pub max_step_runs: usize,
    /// Results whose JSON is larger are kept in `results` and recorded by reference.
    pub inline_result_bytes: usize,
    /// How much of each step's input the record keeps.
    pub input_preview_bytes: usize,
    pub results: Arc<dyn ResultStore>,
    pub sleeper: Arc<dyn Sleeper>,
    /// Starts the child executions of `invokeFlow` steps and `invoke-flow` calls;
    /// without one, those fail with an error that says so.
    pub launcher: Option<Arc<dyn FlowLauncher>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_step_runs: DEFAULT_MAX_STEP_RUNS,
            inline_result_bytes: 64 << 10,
            input_preview_bytes: 256,
            results: Arc::new(MemoryResultStore::new()),
            sleeper: Arc::new(TokioSleeper),
            launcher: None,
        }
    }
}

/// What an execution runs with: who it is for, its capabilities (state, connections,
/// config, logs, egress) and the limits of each sandbox.
#[derive(Clone, Default)]
pub struct RunEnv {
    /// Tenant, customer, integration and instance ids, and the execution id (one is
    /// generated when empty). The engine sets `flow_name` (to the flow's key), `step`
    /// and `attempt` itself.
    pub context: ExecutionContext,
    pub capabilities: Capabilities,
    /// The budgets of each step's sandbox.
    pub limits: Limits,
    /// When the whole execution must have ended (the flow's time limit). Each step's
    /// sandbox gets at most the time left, step retries do not sleep past it, and no
    /// step starts after it: the execution fails with a `time-limit` error.
    pub deadline: Option<std::time::Instant>,
}

/// `limits` with the timeout cut to what is left before `deadline` (at least 1 ms, so
/// a step that starts just before the deadline ends as a timeout, not a hang).
pub(crate) fn limits_before(limits: &Limits, deadline: Option<std::time::Instant>) -> Limits {
    let mut limits = limits.clone();
    if let Some(deadline) = deadline {
        let left = deadline
            .saturating_duration_since(std::time::Instant::now())
            .max(Duration::from_millis(1));
        limits.timeout = limits.timeout.min(left);
    }
    limits
}

/// An execution could not start. Everything after the start is in the record.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no flow `{flow}` in integration `{integration}` (its flows: {known})")]
    UnknownFlow {
        flow: String,
        integration: String,
        known: String,
    },
    /// An instance hook could not start (its inputs, or the sandbox refused the call).
    #[error("instance hook: {0}")]
    Hook(String),
}

/// Runs flows. Cloning is cheap.
#[derive(Clone)]
pub struct FlowEngine {
    runtime: Runtime,
    options: EngineOptions,
}

impl FlowEngine {
    pub fn new(runtime: Runtime) -> Self {
        Self::with_options(runtime, EngineOptions::default())
    }

    pub fn with_options(runtime: Runtime, options: EngineOptions) -> Self {
        FlowEngine { runtime, options }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Runs the flow `flow` of `plan` once, for `request` (what the trigger receives),
    /// and returns its record. A failing step does not make this an error: the record
    /// says `failed` and names the step.
    pub async fn run(
        &self,
        plan: &Plan,
        flow: &str,
        request: HttpRequest,
        env: &RunEnv,
    ) -> Result<ExecutionRecord, RunError> {
        let integration = &plan.inner;
        let Some(flow_plan) = integration.flow(flow) else {
            return Err(RunError::UnknownFlow {
                flow: flow.to_string(),
                integration: integration.name.clone(),
                known: plan.flow_keys().join(", "),
            });
        };
        let mut run = Run::new(self, plan, flow_plan, env);
        Ok(run.execute(request).await)
    }
}

/// The instance lifecycle hook of a component trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceHook {
    /// `on-instance-deploy`: runs when an instance is deployed (and may run again).
    Deploy,
    /// `on-instance-remove`: runs when an instance is removed.
    Remove,
}

impl FlowEngine {
    /// Runs the deploy or remove hook of flow `flow`'s component trigger, with the
    /// trigger's inputs resolved against the instance's config (as a host does when it
    /// deploys or removes an instance). `None` when the flow has the built-in webhook
    /// trigger (no hook) or is code-native.
    pub async fn instance_hook(
        &self,
        plan: &Plan,
        flow: &str,
        hook: InstanceHook,
        env: &RunEnv,
    ) -> Result<Option<ExecutionReport>, RunError> {
        let integration = &plan.inner;
        let Some(flow_plan) = integration.flow(flow) else {
            return Err(RunError::UnknownFlow {
                flow: flow.to_string(),
                integration: integration.name.clone(),
                known: plan.flow_keys().join(", "),
            });
        };
        let TriggerPlan::Component {
            entry,
            trigger,
            inputs,
            ..
        } = &flow_plan.trigger
        else {
            return Ok(None);
        };
        let run = Run::new(self, plan, flow_plan, env);
        let inputs = match run.write_fields(inputs) {
            Ok(inputs) => inputs,
            Err(error) => {
                return Err(RunError::Hook(format!(
                    "trigger inputs of flow `{flow}`: {}",
                    error.message
                )));
            }
        };
        let call = match hook {
            InstanceHook::Deploy => Call::InstanceDeploy {
                trigger: trigger.clone(),
                inputs,
            },
            InstanceHook::Remove => Call::InstanceRemove {
                trigger: trigger.clone(),
                inputs,
            },
        };
        self.runtime
            .execute(
                &entry.component,
                call,
                run.context.clone(),
                &run.caps,
                &env.limits,
            )
            .await
            .map(Some)
            .map_err(|err| RunError::Hook(format!("flow `{flow}`: {err}")))
    }
}

/// A request carrying `body` as JSON, for runs whose trigger needs nothing else.
pub fn json_request(body: impl Into<Vec<u8>>) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: String::new(),
        query: Vec::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into(),
    }
}

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

/// What one step's slot holds during an execution.
#[derive(Default)]
struct Slot {
    results: Option<Arc<Value>>,
    branch: Option<Value>,
    item: Option<Arc<Value>>,
    index: Option<Value>,
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

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The state of one execution.
struct Run<'a> {
    engine: &'a FlowEngine,
    plan: &'a Plan,
    flow: &'a FlowPlan,
    env: &'a RunEnv,
    context: ExecutionContext,
    caps: Capabilities,
    config: Vec<Option<Value>>,
    slots: Vec<Slot>,
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
    fn new(engine: &'a FlowEngine, plan: &'a Plan, flow: &'a FlowPlan, env: &'a RunEnv) -> Self {
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
        let config = plan
            .inner
            .config_vars
            .iter()
            .map(|var| {
                env.capabilities
                    .config
                    .get(&var.key)
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .or_else(|| var.default.clone())
            })
            .collect();
        let mut slots = Vec::with_capacity(flow.slots);
        slots.resize_with(flow.slots, Slot::default);
        Run {
            engine,
            plan,
            flow,
            env,
            context,
            caps,
            config,
            slots,
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

    async fn execute(&mut self, request: HttpRequest) -> ExecutionRecord {
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
                    "time-limit",
                    "the execution reached its flow's time limit before this step",
                ),
            });
        }
        self.step_runs += 1;
        if self.step_runs > self.engine.options.max_step_runs {
            return Err(Failure {
                step: key.to_string(),
                error: StepError::new(
                    "limit",
                    format!(
                        "the execution ran more than {} steps",
                        self.engine.options.max_step_runs
                    ),
                ),
            });
        }
        Ok(())
    }

    fn step_context(&self, key: &str, attempt: u32) -> ExecutionContext {
        ExecutionContext {
            step: Some(key.to_string()),
            attempt,
            ..self.context.clone()
        }
    }

    fn new_record(&self, key: &str, kind: StepKind, started_ms: u64) -> StepRecord {
        StepRecord {
            iteration: self.iteration.clone(),
            ..StepRecord::started(key, kind, started_ms)
        }
    }

    fn finish_record(mut record: StepRecord, started: Instant) -> StepRecord {
        record.ended_at_ms = now_ms();
        record.duration_us = micros(started.elapsed());
        record
    }

    // ----- the trigger -----

    /// Runs the trigger. `Some(response)` ends the execution with that response (the
    /// trigger answered the request itself).
    async fn trigger(&mut self, request: HttpRequest) -> Result<Option<FlowResponse>, Failure> {
        let started_ms = now_ms();
        let started = Instant::now();
        let mut record = self.new_record(TRIGGER_KEY, StepKind::Trigger, started_ms);
        let flow = self.flow;
        match &flow.trigger {
            TriggerPlan::Webhook => {
                let body = match body_value(&request.body, header(&request, "content-type")) {
                    Ok(body) => body,
                    Err(error) => {
                        record.status = StepStatus::Failed;
                        record.error = Some(error.clone());
                        self.steps.push(Self::finish_record(record, started));
                        return Err(Failure {
                            step: TRIGGER_KEY.to_string(),
                            error,
                        });
                    }
                };
                let results = Arc::new(trigger_results(&request, body));
                record.result = Some(self.recorded(&results, TRIGGER_KEY).await);
                self.slots[0].results = Some(results);
                self.steps.push(Self::finish_record(record, started));
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
                let fail = |this: &mut Self, mut record: StepRecord, error: StepError| {
                    record.status = StepStatus::Failed;
                    record.error = Some(error.clone());
                    this.steps.push(Self::finish_record(record, started));
                    Err(Failure {
                        step: TRIGGER_KEY.to_string(),
                        error,
                    })
                };
                let inputs = match self.write_fields(inputs) {
                    Ok(inputs) => inputs,
                    Err(error) => return fail(self, record, error),
                };
                record.input = Some(InputSummary::of(
                    &inputs,
                    self.engine.options.input_preview_bytes,
                ));
                let call = Call::Trigger {
                    trigger: trigger.clone(),
                    request: request.clone(),
                    inputs,
                };
                let (attempt, ended) = self.sandbox(entry, call, TRIGGER_KEY, 1, 0).await;
                add_attempt(&mut record, attempt.0, attempt.1);
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
                        self.slots[0].results = Some(results);
                        self.slots[0].branch = branch.map(Value::String);
                        if let Some(response) = response {
                            self.trigger_response = Some(http_response(response));
                        }
                        self.steps.push(Self::finish_record(record, started));
                        Ok(None)
                    }
                    Ok(Returned::Trigger(TriggerOutcome::Respond { response })) => {
                        let response = http_response(response);
                        record.result = response.body.clone();
                        self.steps.push(Self::finish_record(record, started));
                        self.trigger_responded = true;
                        Ok(Some(response))
                    }
                    Ok(_) => fail(
                        self,
                        record,
                        StepError::new("invalid-output", "the trigger returned no trigger outcome"),
                    ),
                    Err((error, _)) => fail(self, record, error),
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
        self.slots[slot].results = Some(Arc::new(name_value.clone()));
        self.slots[slot].branch = Some(name_value);
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
            .resolve(&node.value)
            .map_err(|error| self.control_failure(&node.key, kind, started_ms, error))?;
        for (name, candidate, steps) in &node.branches {
            let candidate = self
                .resolve(candidate)
                .map_err(|error| self.control_failure(&node.key, kind, started_ms, error))?;
            if compare(Operator::Equal, value.as_ref(), candidate.as_ref()).unwrap_or(false) {
                return self
                    .take_branch(node.slot, &node.key, kind, name, steps, started_ms)
                    .await;
            }
        }
        self.take_branch(
            node.slot,
            &node.key,
            kind,
            "Else",
            &node.else_steps,
            started_ms,
        )
        .await
    }

    async fn branch_on_expression(
        &mut self,
        node: &BranchOnExpressionNode,
    ) -> Result<Control, Failure> {
        self.count_step(&node.key)?;
        let started_ms = now_ms();
        let kind = StepKind::BranchOnExpression;
        for (name, condition, steps) in &node.branches {
            let verdict = condition.evaluate(&mut |term: &CInput| self.resolve(term));
            let chosen = match verdict {
                Ok(Ok(chosen)) => chosen,
                Ok(Err(error)) => {
                    let error = StepError::new(
                        "expression",
                        format!("condition of branch `{name}`: {error}"),
                    );
                    return Err(self.control_failure(&node.key, kind, started_ms, error));
                }
                Err(error) => return Err(self.control_failure(&node.key, kind, started_ms, error)),
            };
            if chosen {
                return self
                    .take_branch(node.slot, &node.key, kind, name, steps, started_ms)
                    .await;
            }
        }
        self.take_branch(
            node.slot,
            &node.key,
            kind,
            "Else",
            &node.else_steps,
            started_ms,
        )
        .await
    }

    async fn run_loop(&mut self, node: &LoopNode, kind: StepKind) -> Result<Control, Failure> {
        self.count_step(&node.key)?;
        let started_ms = now_ms();
        let started = Instant::now();
        let source = self
            .resolve(&node.source)
            .map_err(|error| self.control_failure(&node.key, kind, started_ms, error))?;
        // A count is iterated, not materialized: one from a request may be huge, and
        // the cap on step runs ends such a loop.
        let items: LoopItems = match (kind, source) {
            (StepKind::LoopOverItems, Some(Value::Array(items))) => LoopItems::List(items),
            (StepKind::LoopOverItems, other) => {
                let error = StepError::new(
                    "input",
                    format!(
                        "`items` must be a list, got {}",
                        other.map_or("nothing".to_string(), |value| value.to_string())
                    ),
                );
                return Err(self.control_failure(&node.key, kind, started_ms, error));
            }
            (_, source) => {
                let count = source
                    .as_ref()
                    .ok_or_else(|| "`count` resolved to nothing".to_string())
                    .and_then(loop_count);
                match count {
                    Ok(count) => LoopItems::Count(count),
                    Err(message) => {
                        let error = StepError::new("input", message);
                        return Err(self.control_failure(&node.key, kind, started_ms, error));
                    }
                }
            }
        };
        // The loop's record comes before its iterations' records.
        let record_index = self.steps.len();
        self.steps
            .push(self.new_record(&node.key, kind, started_ms));
        let outer_last = self.iteration_last.take();
        let mut results = Vec::with_capacity(items.size().min(1024));
        let mut ended = Ok(Control::Continue);
        for (index, item) in items.values().enumerate() {
            for slot in node.body_slots.clone() {
                self.slots[slot] = Slot::default();
            }
            let slot = &mut self.slots[node.slot];
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
        let slot = &mut self.slots[node.slot];
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
                failure.error.kind.clone(),
                format!("step `{}` failed: {}", failure.step, failure.error.message),
            ));
        }
        self.steps[record_index] = Self::finish_record(record, started);
        self.slots[node.slot].results = Some(Arc::clone(&results));
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
        let response = match self.stop_response(node) {
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

    fn stop_response(&self, node: &StopNode) -> Result<(FlowResponse, Option<Value>), StepError> {
        let field = |input: &Option<CInput>| -> Result<Option<Value>, StepError> {
            match input {
                Some(input) => self.resolve(input),
                None => Ok(None),
            }
        };
        let status = match field(&node.status)? {
            Some(value) => response_status(&value).map_err(|m| StepError::new("input", m))?,
            None => 200,
        };
        let headers = match field(&node.headers)? {
            Some(value) => response_headers(&value).map_err(|m| StepError::new("input", m))?,
            None => Vec::new(),
        };
        let content_type = match field(&node.content_type)? {
            Some(Value::String(text)) => Some(text),
            None | Some(Value::Null) => None,
            Some(other) => {
                return Err(StepError::new(
                    "input",
                    format!("`contentType` must be a string, got {other}"),
                ));
            }
        };
        let body = field(&node.body)?;
        Ok((
            FlowResponse {
                status,
                headers,
                content_type,
                body: None,
            },
            body,
        ))
    }

    // ----- actions -----

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
                record.input = Some(InputSummary::of(
                    &input,
                    self.engine.options.input_preview_bytes,
                ));
                self.attempts(node, input, &mut record).await
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
        let ended = match ended {
            Ok(output) => {
                let Output {
                    data,
                    content_type,
                    status,
                    headers,
                    branch,
                } = output;
                self.output_result(data, content_type.as_deref(), key)
                    .await
                    .map(|(value, recorded)| {
                        (value, recorded, (status, headers, content_type), branch)
                    })
            }
            Err(error) => Err(error),
        };
        match ended {
            Ok((value, recorded, shape, branch)) => {
                record.result = Some(recorded.clone());
                record.branch = branch.clone();
                let slot = &mut self.slots[slot_index];
                slot.results = Some(Arc::clone(&value));
                slot.branch = branch.map(Value::String);
                self.set_last(value, recorded, Some(shape));
                self.steps.push(Self::finish_record(record, started));
                Ok(())
            }
            Err(error) => {
                use super::definition::ErrorHandler;
                let ignore = match policy.handler {
                    ErrorHandler::Fail => false,
                    ErrorHandler::Ignore => true,
                    ErrorHandler::Retry => policy.ignore_final_error,
                };
                record.error = Some(error.clone());
                if !ignore {
                    record.status = StepStatus::Failed;
                    self.steps.push(Self::finish_record(record, started));
                    return Err(Failure {
                        step: key.to_string(),
                        error,
                    });
                }
                record.status = StepStatus::Ignored;
                let value = Arc::new(error.to_result());
                let recorded = RecordedValue::Inline(Arc::clone(&value));
                record.result = Some(recorded.clone());
                self.slots[slot_index].results = Some(Arc::clone(&value));
                self.set_last(value, recorded, None);
                self.steps.push(Self::finish_record(record, started));
                Ok(())
            }
        }
    }

    // ----- flow calls -----

    async fn invoke_flow(&mut self, node: &InvokeFlowNode) -> Result<(), Failure> {
        self.count_step(&node.key)?;
        let started_ms = now_ms();
        let started = Instant::now();
        let mut record = self.new_record(&node.key, StepKind::InvokeFlow, started_ms);
        record.flow = Some(node.flow.to_string());
        let ended = match self.resolve(&node.payload) {
            Err(error) => Err(error),
            Ok(payload) => {
                let payload = payload.unwrap_or(Value::Null).to_string();
                record.input = Some(InputSummary::of(
                    &payload,
                    self.engine.options.input_preview_bytes,
                ));
                self.flow_attempts(node, payload, &mut record).await
            }
        };
        self.step_ended((&node.key, node.slot, node.policy), record, started, ended)
            .await
    }

    /// Calls the flow of an `invokeFlow` step, again after a retryable failure as the
    /// step's policy says. Each call is an attempt; a retry starts a new child.
    async fn flow_attempts(
        &mut self,
        node: &InvokeFlowNode,
        payload: String,
        record: &mut StepRecord,
    ) -> Result<Output, StepError> {
        use super::definition::ErrorHandler;
        let policy = node.policy;
        let mut attempt = 1;
        let mut delay_ms = 0;
        loop {
            let call_started = Instant::now();
            let launch = FlowLaunch {
                parent: self.step_context(&node.key, attempt),
                flow: node.flow.to_string(),
                payload: payload.clone(),
                synchronous: node.synchronous,
                deadline: self.env.deadline,
            };
            let FlowCall {
                child_execution_id,
                result,
            } = call_flow(&self.engine.options, self.plan, launch).await;
            if child_execution_id.is_some() {
                record.child_execution_id = child_execution_id;
            }
            let mut attempt_record = AttemptRecord {
                attempt,
                outcome: if node.synchronous {
                    "completed"
                } else {
                    "queued"
                }
                .into(),
                delay_before_ms: delay_ms,
                duration_us: micros(call_started.elapsed()),
                fuel_used: 0,
                peak_memory_bytes: 0,
                error: None,
            };
            let failed = match result {
                Ok(output) => {
                    record.attempts.push(attempt_record);
                    return Ok(output);
                }
                Err(failed) => failed,
            };
            attempt_record.outcome = "failed".into();
            attempt_record.error = Some(failed.error.clone());
            record.attempts.push(attempt_record);
            let retries_left =
                policy.handler == ErrorHandler::Retry && attempt <= policy.max_retries;
            if !(retries_left && failed.retryable) {
                return Err(failed.error);
            }
            let factor = if policy.exponential {
                1u64 << (attempt - 1).min(16)
            } else {
                1
            };
            delay_ms = u64::from(policy.delay_seconds) * 1000 * factor;
            if let Some(deadline) = self.env.deadline
                && Instant::now() + Duration::from_millis(delay_ms) >= deadline
            {
                // Waiting would outlive the execution: the last error stands.
                return Err(failed.error);
            }
            self.engine
                .options
                .sleeper
                .sleep(Duration::from_millis(delay_ms))
                .await;
            attempt += 1;
        }
    }

    /// Runs the sandboxed attempts of an action step, retrying as its policy says.
    async fn attempts(
        &mut self,
        node: &ActionNode,
        mut input: String,
        record: &mut StepRecord,
    ) -> Result<Output, StepError> {
        use super::definition::ErrorHandler;
        let policy = node.policy;
        let mut attempt = 1;
        let mut delay_ms = 0;
        loop {
            let retries_left =
                policy.handler == ErrorHandler::Retry && attempt <= policy.max_retries;
            let call_input = if retries_left {
                input.clone()
            } else {
                std::mem::take(&mut input)
            };
            let call = Call::Action {
                action: node.action.clone(),
                input: call_input,
            };
            let (attempt_record, ended) = self
                .sandbox(&node.entry, call, &node.key, attempt, delay_ms)
                .await;
            add_attempt(record, attempt_record.0, attempt_record.1);
            let (error, retryable) = match ended {
                Ok(Returned::Output(output)) => return Ok(output),
                Ok(_) => (
                    StepError::new("invalid-output", "the action returned no output"),
                    false,
                ),
                Err(failed) => failed,
            };
            if !(retries_left && retryable) {
                return Err(error);
            }
            let factor = if policy.exponential {
                1u64 << (attempt - 1).min(16)
            } else {
                1
            };
            delay_ms = u64::from(policy.delay_seconds) * 1000 * factor;
            if let Some(deadline) = self.env.deadline
                && std::time::Instant::now() + Duration::from_millis(delay_ms) >= deadline
            {
                // Waiting would outlive the execution: the last error stands.
                return Err(error);
            }
            self.engine
                .options
                .sleeper
                .sleep(Duration::from_millis(delay_ms))
                .await;
            attempt += 1;
        }
    }

    /// One sandboxed call: its attempt record (with the logs it wrote) and how it
    /// ended; errors say whether retrying can help.
    async fn sandbox(
        &mut self,
        entry: &CatalogEntry,
        call: Call,
        key: &str,
        attempt: u32,
        delay_ms: u64,
    ) -> (
        (AttemptRecord, Vec<crate::LogRecord>),
        Result<Returned, (StepError, bool)>,
    ) {
        let sink = Arc::new(StepLogSink::new(Arc::clone(&self.env.capabilities.log)));
        let caps = Capabilities {
            log: sink.clone(),
            ..self.caps.clone()
        };
        let context = self.step_context(key, attempt);
        let started = Instant::now();
        let result = self
            .engine
            .runtime
            .execute(
                &entry.component,
                call,
                context,
                &caps,
                &limits_before(&self.env.limits, self.env.deadline),
            )
            .await;
        let elapsed = started.elapsed();
        let (record, ended) = classify(result, attempt, delay_ms, elapsed);
        ((record, sink.take()), ended)
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

    /// A step's output as the value later steps reference, and as the record keeps it.
    /// JSON that does not parse is an error, never a string: a guest's output was
    /// checked by the sandbox (it parses, at most `MAX_JSON_DEPTH` deep), but a child
    /// flow's response is built by the engine and may nest deeper.
    async fn output_result(
        &self,
        data: Data,
        content_type: Option<&str>,
        key: &str,
    ) -> Result<(Arc<Value>, RecordedValue), StepError> {
        match data {
            Data::Json(text) => {
                let value = Arc::new(json_result(&text)?);
                let recorded = recorded_value(
                    &self.engine.options,
                    &self.context.execution_id,
                    key,
                    &value,
                    Some(text),
                )
                .await;
                Ok((value, recorded))
            }
            bytes @ Data::Bytes(_) => {
                let value = Arc::new(data_value(bytes, content_type));
                let recorded = self.recorded(&value, key).await;
                Ok((value, recorded))
            }
        }
    }

    /// A value as the record keeps it: inline, or stored when large.
    async fn recorded(&self, value: &Arc<Value>, key: &str) -> RecordedValue {
        recorded_value(
            &self.engine.options,
            &self.context.execution_id,
            key,
            value,
            None,
        )
        .await
    }

    // ----- code-native flows -----

    async fn code(&mut self, key: &Arc<str>, entry: &CatalogEntry) -> Result<(), Failure> {
        self.count_step(key)?;
        let started_ms = now_ms();
        let started = Instant::now();
        let mut record = self.new_record(key, StepKind::Code, started_ms);
        record.component = Some(key.to_string());
        let payload = match self.slots[0].results.as_deref() {
            Some(results) => code_flow_payload(results, self.slots[0].branch.as_ref()).to_string(),
            None => "null".to_string(),
        };
        record.input = Some(InputSummary::of(
            &payload,
            self.engine.options.input_preview_bytes,
        ));
        let invoker = Arc::new(FlowInvoker::new(
            self.engine.clone(),
            self.plan.clone(),
            self.caps.clone(),
            Arc::clone(&self.env.capabilities.log),
            self.env.limits.clone(),
            self.env.deadline,
            self.engine
                .options
                .max_step_runs
                .saturating_sub(self.step_runs),
        ));
        let sink = Arc::new(StepLogSink::new(Arc::clone(&self.env.capabilities.log)));
        let caps = Capabilities {
            log: sink.clone(),
            invoker: Some(invoker.clone()),
            ..self.caps.clone()
        };
        let call_started = Instant::now();
        let result = self
            .engine
            .runtime
            .execute(
                &entry.component,
                Call::FlowExecution { payload },
                self.context.clone(),
                &caps,
                &limits_before(&self.env.limits, self.env.deadline),
            )
            .await;
        let (attempt, ended) = classify(result, 1, 0, call_started.elapsed());
        add_attempt(&mut record, attempt, sink.take());
        let invoked = invoker.take_records();
        self.step_runs += invoked.len();
        let record_index = self.steps.len();
        self.steps.push(record);
        self.steps.extend(invoked);
        let placeholder = self.new_record(key, StepKind::Code, started_ms);
        let mut record = std::mem::replace(&mut self.steps[record_index], placeholder);
        let ended = match ended {
            Ok(Returned::Output(output)) => Ok(output),
            Ok(_) => Err(StepError::new(
                "invalid-output",
                "the flow returned no output",
            )),
            Err((error, _)) => Err(error),
        };
        let ended = match ended {
            Ok(output) => {
                let Output {
                    data,
                    content_type,
                    status,
                    headers,
                    ..
                } = output;
                self.output_result(data, content_type.as_deref(), key)
                    .await
                    .map(|(value, recorded)| (value, recorded, (status, headers, content_type)))
            }
            Err(error) => Err(error),
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
        self.steps[record_index] = Self::finish_record(record, started);
        result
    }

    // ----- inputs -----

    /// The JSON input of an action step, checked against the action's schema when the
    /// schema is not trivially satisfied.
    fn action_input(&self, node: &ActionNode) -> Result<String, StepError> {
        if node.schema.is_trivial() {
            return self.write_fields(&node.inputs);
        }
        let value = self.resolve_fields(&node.inputs)?;
        if let Err(problems) = node.schema.check(&value) {
            let detail: Vec<String> = problems
                .into_iter()
                .map(|(pointer, message)| {
                    if pointer.is_empty() {
                        message
                    } else {
                        format!("{pointer}: {message}")
                    }
                })
                .collect();
            return Err(StepError::new(
                "invalid-input",
                format!(
                    "the input does not match the schema of `{}.{}`: {}",
                    node.component_key,
                    node.action,
                    detail.join("; ")
                ),
            ));
        }
        Ok(value.to_string())
    }

    fn reference(&self, reference: &CRef) -> Option<&Value> {
        let slot = &self.slots[reference.slot];
        match reference.field {
            RefField::Results => lookup(slot.results.as_deref()?, &reference.path),
            RefField::Branch => slot.branch.as_ref(),
            RefField::CurrentItem => lookup(slot.item.as_deref()?, &reference.path),
            RefField::Index => slot.index.as_ref(),
        }
    }

    fn config_value(&self, index: usize) -> Result<&Value, StepError> {
        self.config
            .get(index)
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                let key = self
                    .integration()
                    .config_vars
                    .get(index)
                    .map_or("?", |var| var.key.as_str());
                StepError::new(
                    "input",
                    format!(
                        "config variable `{key}` has no value for this instance and no default"
                    ),
                )
            })
    }

    fn render(&self, parts: &[CPart]) -> Result<String, StepError> {
        let mut out = String::new();
        for part in parts {
            match part {
                CPart::Text(text) => out.push_str(text),
                CPart::Ref(reference) => append_value(&mut out, self.reference(reference)),
                CPart::Config(index) => append_value(&mut out, Some(self.config_value(*index)?)),
            }
        }
        Ok(out)
    }

    /// The value of an input (`None`: a reference to nothing, JavaScript's undefined).
    fn resolve(&self, input: &CInput) -> Result<Option<Value>, StepError> {
        Ok(match input {
            CInput::Const { value, .. } => Some(value.clone()),
            CInput::Ref(reference) => self.reference(reference).cloned(),
            CInput::Config(index) => Some(self.config_value(*index)?.clone()),
            CInput::Template(parts) => Some(Value::String(self.render(parts)?)),
            CInput::List(items) => Some(Value::Array(
                items
                    .iter()
                    .map(|item| self.resolve(item).map(|value| value.unwrap_or(Value::Null)))
                    .collect::<Result<_, _>>()?,
            )),
            CInput::Object(fields) => Some(self.resolve_fields(fields)?),
        })
    }

    /// An object of inputs; inputs that resolve to nothing are left out.
    fn resolve_fields(&self, fields: &Fields) -> Result<Value, StepError> {
        let mut object = Map::new();
        for (name, _, input) in fields {
            if let Some(value) = self.resolve(input)? {
                object.insert(name.clone(), value);
            }
        }
        Ok(Value::Object(object))
    }

    /// An object of inputs as JSON text, written without copying referenced values.
    fn write_fields(&self, fields: &Fields) -> Result<String, StepError> {
        let mut out = Vec::with_capacity(64);
        self.write_object(&mut out, fields)?;
        // Only JSON (UTF-8) was written.
        String::from_utf8(out).map_err(|err| StepError::new("input", err.to_string()))
    }

    fn write_object(&self, out: &mut Vec<u8>, fields: &Fields) -> Result<(), StepError> {
        out.push(b'{');
        let mut first = true;
        for (_, quoted, input) in fields {
            if let CInput::Ref(reference) = input
                && self.reference(reference).is_none()
            {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(quoted.as_bytes());
            out.push(b':');
            self.write_input(out, input)?;
        }
        out.push(b'}');
        Ok(())
    }

    fn write_input(&self, out: &mut Vec<u8>, input: &CInput) -> Result<(), StepError> {
        let write = |out: &mut Vec<u8>, value: &Value| {
            serde_json::to_writer(out, value)
                .map_err(|err| StepError::new("input", err.to_string()))
        };
        match input {
            CInput::Const { text, .. } => out.extend_from_slice(text.as_bytes()),
            CInput::Ref(reference) => match self.reference(reference) {
                Some(value) => write(out, value)?,
                None => out.extend_from_slice(b"null"),
            },
            CInput::Config(index) => write(out, self.config_value(*index)?)?,
            CInput::Template(parts) => {
                let text = self.render(parts)?;
                serde_json::to_writer(&mut *out, &text)
                    .map_err(|err| StepError::new("input", err.to_string()))?;
            }
            CInput::List(items) => {
                out.push(b'[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    self.write_input(out, item)?;
                }
                out.push(b']');
            }
            CInput::Object(fields) => self.write_object(out, fields)?,
        }
        Ok(())
    }
}

/// A value as the record keeps it: inline when its JSON (`text`, when the caller has
/// it) fits the cap, else stored in the result store and referenced.
pub(crate) async fn recorded_value(
    options: &EngineOptions,
    execution_id: &str,
    key: &str,
    value: &Arc<Value>,
    text: Option<String>,
) -> RecordedValue {
    let limit = options.inline_result_bytes;
    let small = match &text {
        Some(text) => text.len() <= limit,
        None => is_small(value, limit),
    };
    if small {
        return RecordedValue::Inline(Arc::clone(value));
    }
    let text = text.unwrap_or_else(|| value.to_string());
    let bytes = text.len();
    let preview = InputSummary::of(&text, options.input_preview_bytes).preview;
    match options
        .results
        .put(execution_id, key, text.into_bytes())
        .await
    {
        Ok(reference) => RecordedValue::Stored {
            reference,
            bytes,
            preview,
        },
        // Keeping the result beats losing it when the store is down.
        Err(_) => RecordedValue::Inline(Arc::clone(value)),
    }
}

/// Adds one sandboxed attempt to a step record.
pub(crate) fn add_attempt(
    record: &mut StepRecord,
    attempt: AttemptRecord,
    logs: Vec<crate::LogRecord>,
) {
    record.fuel_used = record.fuel_used.saturating_add(attempt.fuel_used);
    record.peak_memory_bytes = record.peak_memory_bytes.max(attempt.peak_memory_bytes);
    record.attempts.push(attempt);
    record.logs.extend(logs);
}

/// Turns what `Runtime::execute` returned into an attempt record and a result; a
/// failure says whether retrying can help (a `retryable` guest error, a timeout, or a
/// sandbox that could not start).
pub(crate) fn classify(
    result: Result<ExecutionReport, ExecuteError>,
    attempt: u32,
    delay_ms: u64,
    elapsed: Duration,
) -> (AttemptRecord, Result<Returned, (StepError, bool)>) {
    let mut record = AttemptRecord {
        attempt,
        outcome: "not-run".into(),
        delay_before_ms: delay_ms,
        duration_us: micros(elapsed),
        fuel_used: 0,
        peak_memory_bytes: 0,
        error: None,
    };
    let ended = match result {
        Err(err) => {
            // `busy`: every sandbox slot stayed taken for the runtime's bounded wait;
            // the host may answer 503 or queue the execution again.
            let kind = if matches!(err, ExecuteError::Busy { .. }) {
                "busy"
            } else {
                "host"
            };
            let retryable = matches!(
                err,
                ExecuteError::Busy { .. } | ExecuteError::Instantiate(_)
            );
            Err((StepError::new(kind, err.to_string()), retryable))
        }
        Ok(report) => {
            record.outcome = report.outcome.status().to_string();
            record.fuel_used = report.metering.fuel_used;
            record.peak_memory_bytes = report.metering.peak_memory_bytes;
            match report.outcome {
                Outcome::Completed { result } => Ok(result),
                Outcome::GuestError { error } => {
                    let retryable = error.kind == GuestErrorKind::Retryable;
                    Err((guest_error(error), retryable))
                }
                other => {
                    let retryable = matches!(other, Outcome::Timeout { .. });
                    Err((outcome_error(&other), retryable))
                }
            }
        }
    };
    if let Err((error, _)) = &ended {
        record.error = Some(error.clone());
    }
    (record, ended)
}

pub(crate) fn guest_error(error: GuestError) -> StepError {
    let kind = match error.kind {
        GuestErrorKind::InvalidInput => "invalid-input",
        GuestErrorKind::Connection => "connection",
        GuestErrorKind::Retryable => "retryable",
        GuestErrorKind::Fatal => "fatal",
    };
    StepError {
        kind: kind.into(),
        message: error.message,
        connection: error.connection.filter(|key| !key.is_empty()),
    }
}

/// A sandbox outcome other than completion or a guest error, as a step error.
fn outcome_error(outcome: &Outcome) -> StepError {
    let message = match outcome {
        Outcome::OutOfFuel { limit } => format!("ran out of fuel (limit {limit})"),
        Outcome::MemoryLimit { limit, requested } => {
            format!("asked for {requested} bytes of memory; the limit is {limit}")
        }
        Outcome::Timeout { limit_ms } => format!("did not finish within {limit_ms} ms"),
        Outcome::Trap {
            message, stderr, ..
        } => match stderr {
            Some(stderr) => format!("trapped: {message} ({stderr})"),
            None => format!("trapped: {message}"),
        },
        Outcome::OutputTooLarge { size, limit } => {
            format!("returned {size} bytes; the limit is {limit}")
        }
        Outcome::InvalidOutput { message } => message.clone(),
        Outcome::LogLimit { limit } => format!("wrote more than {limit} bytes of logs"),
        Outcome::HostCallLimit { limit } => format!("made more than {limit} host calls"),
        Outcome::Completed { .. } | Outcome::GuestError { .. } => String::new(),
    };
    StepError::new(outcome.status(), message)
}

fn is_small(value: &Value, limit: usize) -> bool {
    // Cheap for the common small values; large ones are serialized once to measure.
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
        Value::String(text) => text.len() + 2 <= limit,
        _ => serde_json::to_vec(value).map_or(true, |bytes| bytes.len() <= limit),
    }
}

/// A step's JSON result as a value; what cannot be read is an `invalid-output` error
/// that says why.
fn json_result(text: &str) -> Result<Value, StepError> {
    serde_json::from_str(text).map_err(|err| {
        let message = if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            format!(
                "the result is JSON nested more than {} levels deep, the most a flow reads",
                crate::MAX_JSON_DEPTH
            )
        } else {
            format!("the result is not JSON: {err}")
        };
        StepError::new("invalid-output", message)
    })
}

/// What a loop iterates: a list's items, or `0..count`.
enum LoopItems {
    List(Vec<Value>),
    Count(u64),
}

impl LoopItems {
    fn size(&self) -> usize {
        match self {
            LoopItems::List(items) => items.len(),
            LoopItems::Count(count) => usize::try_from(*count).unwrap_or(usize::MAX),
        }
    }

    fn values(self) -> Box<dyn Iterator<Item = Value> + Send> {
        match self {
            LoopItems::List(items) => Box::new(items.into_iter()),
            LoopItems::Count(count) => Box::new((0..count).map(Value::from)),
        }
    }
}

/// Data as a step result: JSON parsed; bytes as `{contentType, base64}`.
/// A trigger's accepted payload (or an action's data) as a JSON value: JSON data
/// parsed, bytes as `{contentType, base64}`.
pub fn data_value(data: Data, content_type: Option<&str>) -> Value {
    match data {
        Data::Json(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Data::Bytes(bytes) => {
            let mut object = Map::new();
            object.insert(
                "contentType".into(),
                Value::String(
                    content_type
                        .unwrap_or("application/octet-stream")
                        .to_string(),
                ),
            );
            object.insert(
                "base64".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
            Value::Object(object)
        }
    }
}

/// A request body as the trigger's `body`: JSON when it parses, text when it is
/// UTF-8, `{contentType, base64}` otherwise; `null` when empty. JSON nested deeper
/// than [`MAX_JSON_DEPTH`](crate::MAX_JSON_DEPTH) (what every reader in Sluice
/// takes, and what a guest may return) is an error: read as text, it would turn a
/// caller's object into a string that conditions then misread.
fn body_value(body: &[u8], content_type: Option<&str>) -> Result<Value, StepError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    match serde_json::from_slice(body) {
        Ok(value) => return Ok(value),
        // `IgnoredAny` reads without a depth limit (and without recursing), so it
        // tells JSON that is only too deep from text that is no JSON at all.
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() => {
            return Err(StepError::new(
                "invalid-input",
                format!(
                    "the request body is JSON nested more than {} levels deep, the most \
                     a flow reads",
                    crate::MAX_JSON_DEPTH
                ),
            ));
        }
        Err(_) => {}
    }
    Ok(match std::str::from_utf8(body) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => data_value(Data::Bytes(body.to_vec()), content_type),
    })
}

fn header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
    request
        .headers
        .iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// `trigger.results`: `{method, path, query, headers, body}`, `body` being what the
/// trigger accepted. Header names are lower-cased and repeated headers joined with
/// `, `; a repeated query parameter keeps its last value.
pub fn trigger_results(request: &HttpRequest, body: Value) -> Value {
    let mut headers = Map::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    let query: Map<String, Value> = request
        .query
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    let mut results = Map::new();
    results.insert("method".into(), Value::String(request.method.clone()));
    results.insert("path".into(), Value::String(request.path.clone()));
    results.insert("query".into(), Value::Object(query));
    results.insert("headers".into(), Value::Object(headers));
    results.insert("body".into(), body);
    Value::Object(results)
}

/// The payload of a code-native flow: the whole trigger result plus the trigger's
/// `branch` (`null` when none), as Prismatic's code-native flows get it, so a flow
/// can tell deliveries apart by their headers and act on the trigger's decision.
pub fn code_flow_payload(results: &Value, branch: Option<&Value>) -> Value {
    match results {
        Value::Object(results) => {
            let mut payload = results.clone();
            payload.insert("branch".into(), branch.cloned().unwrap_or(Value::Null));
            Value::Object(payload)
        }
        other => other.clone(),
    }
}

/// A trigger's HTTP response as the flow's response.
fn http_response(response: HttpResponse) -> FlowResponse {
    let body = if response.body.is_empty() {
        None
    } else {
        Some(RecordedValue::Inline(Arc::new(
            match String::from_utf8(response.body) {
                Ok(text) => Value::String(text),
                Err(err) => data_value(
                    Data::Bytes(err.into_bytes()),
                    response.content_type.as_deref(),
                ),
            },
        )))
    };
    FlowResponse {
        status: response.status,
        headers: response.headers,
        content_type: response.content_type,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_results_normalize_headers() {
        let request = HttpRequest {
            method: "POST".into(),
            path: "x".into(),
            query: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            headers: vec![
                ("X-Thing".into(), "one".into()),
                ("x-thing".into(), "two".into()),
            ],
            body: br#"{"n": 1}"#.to_vec(),
        };
        let body = body_value(&request.body, None).unwrap();
        assert_eq!(
            trigger_results(&request, body),
            json!({
                "method": "POST", "path": "x", "query": {"a": "2"},
                "headers": {"x-thing": "one, two"}, "body": {"n": 1}
            })
        );
        assert_eq!(body_value(b"", None), Ok(Value::Null));
        assert_eq!(body_value(b"plain", None), Ok(json!("plain")));
        assert_eq!(
            body_value(&[0xff, 0xfe], Some("image/png")),
            Ok(json!({"contentType": "image/png", "base64": "//4="}))
        );
    }
}
