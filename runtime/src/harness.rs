//! The local test harness for component and flow authors: load a built component,
//! call an action, trigger, data source or lifecycle hook (or run a code-native flow)
//! in process with chosen inputs, connections, config and initial state, and get back
//! the outcome, the state changes and the captured logs, through the real sandbox.
//!
//! ```no_run
//! use serde_json::json;
//! use sluice_runtime::harness::{Harness, Scope, build_component};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let wasm = build_component(env!("CARGO_MANIFEST_DIR"))?;
//! let harness = Harness::from_file(&wasm)?
//!     .with_config("region", json!("eu"))
//!     .with_state(Scope::Flow, "count", json!(41));
//! let run = harness.action("counter", json!({})).await?;
//! assert_eq!(run.json()?, json!({"count": 42}));
//! assert_eq!(run.state_changes[0].after, Some(json!(42)));
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::flow::executor::attempt::{invoke_refused, invoke_result};
pub use crate::guest_build::{GuestBuildError, build_component};
use crate::{
    Call, Capabilities, Connection, Data, EgressPolicy, EgressRuleError, ExecuteError,
    ExecutionContext, GuestError, HttpRequest, Invoker, Limits, LoadError, LoadedComponent,
    LogRecord, MemoryLogSink, MemoryStateStore, Metering, NetworkPolicy, Outcome, Output, Returned,
    Runtime, RuntimeConfig, RuntimeError, StateNamespace, StaticConfig, StaticConnections,
    TriggerOutcome,
};

/// What went wrong in a harness call. Guest failures are not errors here: they are
/// the [`Run::outcome`] a test asserts on.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    /// The component could not be built.
    Build(#[from] GuestBuildError),
    #[error("cannot read {path}: {source}")]
    /// A component file could not be read.
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    #[error(transparent)]
    /// The component could not be loaded.
    Load(#[from] LoadError),
    #[error(transparent)]
    /// The runtime could not be created.
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    /// The sandbox could not run the call.
    Execute(#[from] ExecuteError),
    #[error(transparent)]
    /// An egress rule given to the harness is malformed.
    Egress(#[from] EgressRuleError),
    #[error("not JSON: {0}")]
    /// A value is not JSON, or not the JSON expected.
    Json(#[from] serde_json::Error),
    /// The run did not end the way the accessor expects (e.g. `json()` on an error).
    #[error("expected {expected}, but the execution ended with {actual}")]
    Unexpected {
        /// What the accessor expected.
        expected: &'static str,
        /// How the execution actually ended.
        actual: String,
    },
}

/// A state scope, as a guest names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// State of one execution.
    Execution,
    /// State of one flow of the instance.
    Flow,
    /// State shared by all flows of the instance.
    Instance,
    /// State shared by all instances of the integration.
    Integration,
}

/// One key that an execution created, changed or deleted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateChange {
    /// The scope the key is in.
    pub scope: Scope,
    /// The key.
    pub key: String,
    /// `None`: the key did not exist.
    pub before: Option<Value>,
    /// `None`: the key was deleted.
    pub after: Option<Value>,
}

/// A call made by a code-native flow through `invoke`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invocation {
    /// The invoked component's key.
    pub component: String,
    /// The action called.
    pub action: String,
    /// The input given to the action.
    pub input: Value,
    /// The invoked action's outcome.
    pub outcome: Outcome,
}

/// A call made by a code-native flow through `invoke-flow` or `invoke-flow-async`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowInvocation {
    /// The flow's name, as given to [`Harness::with_flow`].
    pub flow: String,
    /// The child's trigger payload.
    pub payload: Value,
    /// `invoke-flow` (true) or `invoke-flow-async` (false).
    pub synchronous: bool,
    /// The id the child execution ran under.
    pub execution_id: String,
    /// The child flow's outcome (an asynchronous child runs before its id is returned).
    pub outcome: Outcome,
}

/// The result of one harness call.
#[derive(Debug, Clone)]
pub struct Run {
    /// How the call ended: a result, a guest error, or a sandbox outcome.
    pub outcome: Outcome,
    /// Resources the call used.
    pub metering: Metering,
    /// Log lines of the execution (and of the actions it invoked), in order.
    pub logs: Vec<LogRecord>,
    /// Persisted state the execution changed, sorted by scope and key.
    pub state_changes: Vec<StateChange>,
    /// For flows: every `invoke` call, in order.
    pub invocations: Vec<Invocation>,
    /// For flows: every `invoke-flow` and `invoke-flow-async` call, in order.
    pub flow_invocations: Vec<FlowInvocation>,
}

impl Run {
    fn unexpected(&self, expected: &'static str) -> HarnessError {
        let actual = match &self.outcome {
            Outcome::GuestError { error } => format!("guest error: {error}"),
            Outcome::Trap {
                message,
                stderr: Some(stderr),
                ..
            } => format!("trap: {message} ({stderr})"),
            other => format!("{} ({other:?})", other.status()),
        };
        HarnessError::Unexpected { expected, actual }
    }

    /// The output of a completed action or flow.
    pub fn output(&self) -> Result<&Output, HarnessError> {
        match &self.outcome {
            Outcome::Completed {
                result: Returned::Output(output),
            } => Ok(output),
            _ => Err(self.unexpected("an output")),
        }
    }

    /// The JSON data of a completed action or flow, parsed.
    pub fn json(&self) -> Result<Value, HarnessError> {
        match &self.output()?.data {
            Data::Json(text) => Ok(serde_json::from_str(text)?),
            Data::Bytes(_) => Err(self.unexpected("JSON data")),
        }
    }

    /// The error a guest returned.
    pub fn guest_error(&self) -> Result<&GuestError, HarnessError> {
        match &self.outcome {
            Outcome::GuestError { error } => Ok(error),
            _ => Err(self.unexpected("a guest error")),
        }
    }

    /// A trigger's decision.
    pub fn trigger_outcome(&self) -> Result<&TriggerOutcome, HarnessError> {
        match &self.outcome {
            Outcome::Completed {
                result: Returned::Trigger(outcome),
            } => Ok(outcome),
            _ => Err(self.unexpected("a trigger outcome")),
        }
    }

    /// A data source's result, parsed.
    pub fn data_source(&self) -> Result<Value, HarnessError> {
        match &self.outcome {
            Outcome::Completed {
                result: Returned::DataSource(text),
            } => Ok(serde_json::from_str(text)?),
            _ => Err(self.unexpected("a data source result")),
        }
    }

    /// Messages of the log lines, for quick assertions.
    pub fn messages(&self) -> Vec<&str> {
        self.logs
            .iter()
            .map(|record| record.message.as_str())
            .collect()
    }
}

/// A component under test, with the capabilities its executions get. Cheap to clone;
/// clones share state, so consecutive calls see each other's writes.
#[derive(Clone)]
pub struct Harness {
    runtime: Runtime,
    component: LoadedComponent,
    state: Arc<MemoryStateStore>,
    connections: StaticConnections,
    config: StaticConfig,
    egress: EgressPolicy,
    allowed_hosts: Vec<String>,
    network: Arc<NetworkPolicy>,
    limits: Limits,
    context: ExecutionContext,
    components: HashMap<String, LoadedComponent>,
    flows: HashMap<String, LoadedComponent>,
    executions: Arc<AtomicU64>,
}

impl Harness {
    /// Loads a component (validated and compiled exactly as a server would).
    pub fn new(wasm: &[u8]) -> Result<Self, HarnessError> {
        let runtime = Runtime::new(RuntimeConfig::default().max_concurrency(16))?;
        let component = runtime.load(wasm)?;
        Ok(Self::loaded(runtime, component))
    }

    /// A harness for the same loaded component, without compiling it again, and
    /// with everything else as [`Harness::new`] sets it: empty state, no connections,
    /// config, allowed hosts, components or flows, default limits and context. For
    /// tests that start from one component many times: a JavaScript or Python
    /// component embeds its interpreter and takes seconds to compile.
    pub fn fresh(&self) -> Self {
        Self::loaded(self.runtime.clone(), self.component.clone())
    }

    fn loaded(runtime: Runtime, component: LoadedComponent) -> Self {
        Harness {
            runtime,
            component,
            state: Arc::new(MemoryStateStore::new()),
            connections: StaticConnections::new(),
            config: StaticConfig::new(),
            egress: EgressPolicy::deny_all(),
            allowed_hosts: Vec::new(),
            // Component authors test against fakes on loopback, so the harness opens
            // loopback (and only loopback) the way an operator would with
            // `--egress-allow-cidr 127.0.0.0/8`; every other private range stays shut,
            // as on a server. `with_network` replaces this.
            network: Arc::new(NetworkPolicy::new().allow_loopback()),
            limits: Limits::default(),
            context: ExecutionContext {
                execution_id: String::new(),
                tenant_id: "test-tenant".into(),
                customer_id: Some("test-customer".into()),
                customer_external_id: Some("test-customer-external".into()),
                integration_id: "test-integration".into(),
                instance_id: "test-instance".into(),
                flow_name: "test-flow".into(),
                step: None,
                attempt: 1,
                started_at_ms: 0,
                webhook_urls: vec![(
                    "test-flow".into(),
                    "https://hooks.sluice.test/test-flow".into(),
                )],
            },
            components: HashMap::new(),
            flows: HashMap::new(),
            executions: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Loads the component at `path` (e.g. the result of [`build_component`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, HarnessError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| HarnessError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(&bytes)
    }

    /// Adds a connection the guest can get by its key.
    pub fn with_connection(mut self, connection: Connection) -> Self {
        self.connections = self.connections.with(connection);
        self
    }

    /// Sets a config variable.
    pub fn with_config(mut self, key: impl Into<String>, value: Value) -> Self {
        self.config = self.config.with_json(key, value);
        self
    }

    /// Sets a state value before the next call, in the scopes of the harness's context.
    /// (The execution scope belongs to one call, so a value set there is seen by the
    /// next call only.)
    pub fn with_state(self, scope: Scope, key: &str, value: Value) -> Self {
        let namespace = self.namespace(scope, &self.next_execution_id_peek());
        // A serde_json::Value always serializes to valid JSON.
        let canonical =
            crate::canonical_json(&value.to_string()).unwrap_or_else(|_| value.to_string());
        self.state.put(&namespace, key, canonical);
        self
    }

    /// Allows outbound HTTP to `rule` (e.g. `http://127.0.0.1:8080`).
    pub fn allow_host(mut self, rule: &str) -> Result<Self, HarnessError> {
        self.allowed_hosts.push(rule.to_string());
        self.egress = EgressPolicy::parse(&self.allowed_hosts)?;
        Ok(self)
    }

    /// Replaces the operator's network policy (opened ranges, resolver, outbound
    /// caps); the default opens loopback only.
    pub fn with_network(mut self, network: NetworkPolicy) -> Self {
        self.network = Arc::new(network);
        self
    }

    /// Replaces the limits of every execution.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Edits the execution context (tenant, instance, flow name, webhook URLs...).
    pub fn with_context(mut self, edit: impl FnOnce(&mut ExecutionContext)) -> Self {
        edit(&mut self.context);
        self
    }

    /// Makes a component available to a code-native flow's `invoke` under `key`.
    pub fn with_component(
        mut self,
        key: impl Into<String>,
        wasm: &[u8],
    ) -> Result<Self, HarnessError> {
        let component = self.runtime.load(wasm)?;
        self.components.insert(key.into(), component);
        Ok(self)
    }

    /// Makes a code-native flow available to a flow's `invoke-flow` calls under
    /// `name`. It runs with the raw payload the caller passes (no trigger), with the
    /// harness's state, config and connections, and without an invoker of its own.
    pub fn with_flow(mut self, name: impl Into<String>, wasm: &[u8]) -> Result<Self, HarnessError> {
        let flow = self.runtime.load(wasm)?;
        self.flows.insert(name.into(), flow);
        Ok(self)
    }

    /// The current value of a state key (for the execution scope: of the last call).
    pub fn state(&self, scope: Scope, key: &str) -> Option<Value> {
        let namespace = self.namespace(scope, &self.last_execution_id());
        serde_json::from_str(&self.state.value(&namespace, key)?).ok()
    }

    /// The component's manifest.
    pub async fn manifest(&self) -> Result<Value, HarnessError> {
        let run = self.call(Call::Manifest).await?;
        match &run.outcome {
            Outcome::Completed {
                result: Returned::Manifest(text),
            } => Ok(serde_json::from_str(text)?),
            _ => Err(run.unexpected("a manifest")),
        }
    }

    /// Runs the action `name` with `input`.
    pub async fn action(&self, name: &str, input: Value) -> Result<Run, HarnessError> {
        self.call(Call::Action {
            action: name.into(),
            input: input.to_string(),
        })
        .await
    }

    /// Runs the trigger `name` on `request`, with the trigger's `inputs`.
    pub async fn trigger(
        &self,
        name: &str,
        request: HttpRequest,
        inputs: Value,
    ) -> Result<Run, HarnessError> {
        self.call(Call::Trigger {
            trigger: name.into(),
            request,
            inputs: inputs.to_string(),
        })
        .await
    }

    /// Runs the data source `name` with `input`.
    pub async fn data_source(&self, name: &str, input: Value) -> Result<Run, HarnessError> {
        self.call(Call::DataSource {
            name: name.into(),
            input: input.to_string(),
        })
        .await
    }

    /// Runs the instance-deploy hook of `trigger`.
    pub async fn deploy(&self, trigger: &str, inputs: Value) -> Result<Run, HarnessError> {
        self.call(Call::InstanceDeploy {
            trigger: trigger.into(),
            inputs: inputs.to_string(),
        })
        .await
    }

    /// Runs the instance-remove hook of `trigger`.
    pub async fn remove(&self, trigger: &str, inputs: Value) -> Result<Run, HarnessError> {
        self.call(Call::InstanceRemove {
            trigger: trigger.into(),
            inputs: inputs.to_string(),
        })
        .await
    }

    /// Runs a code-native flow with `payload`.
    pub async fn flow(&self, payload: Value) -> Result<Run, HarnessError> {
        self.call(Call::FlowExecution {
            payload: payload.to_string(),
        })
        .await
    }

    async fn call(&self, call: Call) -> Result<Run, HarnessError> {
        let number = self.executions.fetch_add(1, Ordering::Relaxed) + 1;
        let context = ExecutionContext {
            execution_id: format!("test-execution-{number}"),
            ..self.context.clone()
        };
        let logs = MemoryLogSink::new();
        let invocations = Arc::new(std::sync::Mutex::new(Vec::new()));
        let flow_invocations = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut capabilities = Capabilities {
            state: self.state.clone(),
            connections: Arc::new(self.connections.clone()),
            config: Arc::new(self.config.clone()),
            log: Arc::new(logs.clone()),
            egress: Arc::new(self.egress.clone()),
            network: Arc::clone(&self.network),
            invoker: None,
        };
        if !self.components.is_empty() || !self.flows.is_empty() {
            capabilities.invoker = Some(Arc::new(HarnessInvoker {
                runtime: self.runtime.clone(),
                components: self.components.clone(),
                flows: self.flows.clone(),
                capabilities: capabilities.clone(),
                limits: self.limits.clone(),
                invocations: Arc::clone(&invocations),
                flow_invocations: Arc::clone(&flow_invocations),
                children: AtomicU64::new(0),
            }));
        }
        let before = self.state.snapshot();
        let report = self
            .runtime
            .execute(
                &self.component,
                call,
                context.clone(),
                &capabilities,
                &self.limits,
            )
            .await?;
        let after = self.state.snapshot();
        let invocations = std::mem::take(
            &mut *invocations
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let flow_invocations = std::mem::take(
            &mut *flow_invocations
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        Ok(Run {
            outcome: report.outcome,
            metering: report.metering,
            logs: logs.take(),
            state_changes: self.diff(&context, &before, &after),
            invocations,
            flow_invocations,
        })
    }

    fn namespace(&self, scope: Scope, execution_id: &str) -> StateNamespace {
        let context = &self.context;
        let tenant = context.tenant_id.clone();
        match scope {
            Scope::Execution => StateNamespace::Execution {
                tenant,
                execution: execution_id.to_string(),
            },
            Scope::Flow => StateNamespace::Flow {
                tenant,
                instance: context.instance_id.clone(),
                flow: context.flow_name.clone(),
            },
            Scope::Instance => StateNamespace::Instance {
                tenant,
                instance: context.instance_id.clone(),
            },
            Scope::Integration => StateNamespace::Integration {
                tenant,
                integration: context.integration_id.clone(),
            },
        }
    }

    fn last_execution_id(&self) -> String {
        format!("test-execution-{}", self.executions.load(Ordering::Relaxed))
    }

    fn next_execution_id_peek(&self) -> String {
        format!(
            "test-execution-{}",
            self.executions.load(Ordering::Relaxed) + 1
        )
    }

    /// The changes in this harness's scopes (and this execution's scope).
    fn diff(
        &self,
        context: &ExecutionContext,
        before: &HashMap<(StateNamespace, String), String>,
        after: &HashMap<(StateNamespace, String), String>,
    ) -> Vec<StateChange> {
        let scopes = [
            Scope::Execution,
            Scope::Flow,
            Scope::Instance,
            Scope::Integration,
        ]
        .map(|scope| (self.namespace(scope, &context.execution_id), scope));
        let scope_of = |namespace: &StateNamespace| {
            scopes
                .iter()
                .find(|(candidate, _)| candidate == namespace)
                .map(|(_, scope)| *scope)
        };
        let parse = |text: Option<&String>| text.and_then(|text| serde_json::from_str(text).ok());
        let mut changes = BTreeMap::new();
        for slot in before.keys().chain(after.keys()) {
            let (old, new) = (before.get(slot), after.get(slot));
            if old == new {
                continue;
            }
            if let Some(scope) = scope_of(&slot.0) {
                changes.insert(
                    (scope, slot.1.clone()),
                    StateChange {
                        scope,
                        key: slot.1.clone(),
                        before: parse(old),
                        after: parse(new),
                    },
                );
            }
        }
        changes.into_values().collect()
    }
}

/// Runs a flow's `invoke` calls on the components given to the harness, each in its
/// own sandbox with the flow's capabilities, and records them.
struct HarnessInvoker {
    runtime: Runtime,
    components: HashMap<String, LoadedComponent>,
    flows: HashMap<String, LoadedComponent>,
    capabilities: Capabilities,
    limits: Limits,
    invocations: Arc<std::sync::Mutex<Vec<Invocation>>>,
    flow_invocations: Arc<std::sync::Mutex<Vec<FlowInvocation>>>,
    /// Child executions started so far by this call (their ids extend the caller's).
    children: AtomicU64,
}

impl HarnessInvoker {
    /// Runs flow `name` with `payload` at once and records the call.
    async fn run_flow(
        &self,
        caller: &ExecutionContext,
        name: &str,
        payload: String,
        synchronous: bool,
    ) -> Result<(String, Outcome), GuestError> {
        let Some(flow) = self.flows.get(name) else {
            let mut known: Vec<&String> = self.flows.keys().collect();
            known.sort();
            return Err(GuestError::fatal(format!(
                "the harness has no flow `{name}` (it has {known:?}; add it with with_flow)"
            )));
        };
        let number = self.children.fetch_add(1, Ordering::Relaxed) + 1;
        let execution_id = format!("{}-child-{number}", caller.execution_id);
        let context = ExecutionContext {
            execution_id: execution_id.clone(),
            flow_name: name.to_string(),
            step: None,
            attempt: 1,
            ..caller.clone()
        };
        let call = Call::FlowExecution {
            payload: payload.clone(),
        };
        let report = self
            .runtime
            .execute(flow, call, context, &self.capabilities, &self.limits)
            .await
            .map_err(|err| invoke_refused(&err))?;
        self.flow_invocations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(FlowInvocation {
                flow: name.to_string(),
                payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
                synchronous,
                execution_id: execution_id.clone(),
                outcome: report.outcome.clone(),
            });
        Ok((execution_id, report.outcome))
    }
}

#[async_trait]
impl Invoker for HarnessInvoker {
    async fn invoke(
        &self,
        caller: &ExecutionContext,
        component: &str,
        action: &str,
        input: String,
    ) -> Result<Output, GuestError> {
        let Some(loaded) = self.components.get(component) else {
            let mut known: Vec<&String> = self.components.keys().collect();
            known.sort();
            return Err(GuestError::fatal(format!(
                "the harness has no component `{component}` (it has {known:?}; add it with with_component)"
            )));
        };
        let context = ExecutionContext {
            step: Some(format!("{component}.{action}")),
            ..caller.clone()
        };
        let call = Call::Action {
            action: action.to_string(),
            input: input.clone(),
        };
        let report = self
            .runtime
            .execute(loaded, call, context, &self.capabilities, &self.limits)
            .await
            .map_err(|err| invoke_refused(&err))?;
        // The server's classification, so a timeout is `retryable` here as there.
        let result = invoke_result(report.outcome.clone());
        self.invocations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Invocation {
                component: component.to_string(),
                action: action.to_string(),
                input: serde_json::from_str(&input).unwrap_or(Value::String(input)),
                outcome: report.outcome,
            });
        result
    }

    async fn invoke_flow(
        &self,
        caller: &ExecutionContext,
        name: &str,
        payload: String,
    ) -> Result<Output, GuestError> {
        let (_, outcome) = self.run_flow(caller, name, payload, true).await?;
        invoke_result(outcome)
    }

    async fn invoke_flow_async(
        &self,
        caller: &ExecutionContext,
        name: &str,
        payload: String,
    ) -> Result<String, GuestError> {
        // No queue here: the child runs before its id is returned, so a test sees its
        // effects; its outcome is in `Run::flow_invocations`.
        let (execution_id, _) = self.run_flow(caller, name, payload, false).await?;
        Ok(execution_id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::flow::executor::attempt::{action_output, classify};
    use crate::flow::record::AttemptRecord;
    use crate::{ExecutionReport, GuestErrorKind, Metering};

    /// One outcome of every variant; the match fails to compile when a variant is
    /// added, so the agreement below covers it too.
    fn every_outcome() -> Vec<Outcome> {
        let outcomes = vec![
            Outcome::Completed {
                result: Returned::Output(Output::json("{}")),
            },
            Outcome::GuestError {
                error: GuestError {
                    kind: GuestErrorKind::Connection,
                    message: "token expired".into(),
                    connection: Some("GitHub".into()),
                },
            },
            Outcome::OutOfFuel { limit: 10 },
            Outcome::MemoryLimit {
                limit: 10,
                requested: 20,
            },
            Outcome::Timeout { limit_ms: 5 },
            Outcome::Trap {
                message: "unreachable".into(),
                backtrace: None,
                stderr: Some("panicked".into()),
            },
            Outcome::OutputTooLarge {
                size: 20,
                limit: 10,
            },
            Outcome::InvalidOutput {
                message: "not JSON".into(),
            },
            Outcome::LogLimit { limit: 10 },
            Outcome::HostCallLimit { limit: 10 },
        ];
        for outcome in &outcomes {
            match outcome {
                Outcome::Completed { .. }
                | Outcome::GuestError { .. }
                | Outcome::OutOfFuel { .. }
                | Outcome::MemoryLimit { .. }
                | Outcome::Timeout { .. }
                | Outcome::Trap { .. }
                | Outcome::OutputTooLarge { .. }
                | Outcome::InvalidOutput { .. }
                | Outcome::LogLimit { .. }
                | Outcome::HostCallLimit { .. } => {}
            }
        }
        outcomes
    }

    /// What the server's invoker returns to a flow when the action's sandbox returned
    /// `result`: the attempt's classification, then the action's output or the error
    /// as the flow receives it.
    fn server(result: Result<ExecutionReport, ExecuteError>) -> Result<Output, GuestError> {
        let mut record = AttemptRecord {
            attempt: 1,
            outcome: "not-run".into(),
            delay_before_ms: 0,
            duration_us: 0,
            fuel_used: 0,
            peak_memory_bytes: 0,
            error: None,
        };
        classify(result, &mut record)
            .and_then(action_output)
            .map_err(|failed| failed.to_guest_error())
    }

    fn report(outcome: Outcome) -> ExecutionReport {
        ExecutionReport {
            outcome,
            metering: Metering {
                fuel_used: 1,
                peak_memory_bytes: 1,
                wall_time: Duration::ZERO,
                instantiate_time: Duration::ZERO,
                host_calls: 0,
                log_bytes: 0,
            },
        }
    }

    #[test]
    fn the_harness_classifies_every_outcome_as_the_server_does() {
        for outcome in every_outcome() {
            let status = outcome.status();
            let harness = invoke_result(outcome.clone());
            assert_eq!(harness, server(Ok(report(outcome.clone()))), "{status}");
            let expected = match outcome {
                Outcome::Completed { .. } => None,
                Outcome::GuestError { error } => Some(error.kind),
                // Retrying can fix a timeout, so a flow may call again.
                Outcome::Timeout { .. } => Some(GuestErrorKind::Retryable),
                _ => Some(GuestErrorKind::Fatal),
            };
            assert_eq!(harness.err().map(|error| error.kind), expected, "{status}");
        }
        let busy = ExecuteError::Busy {
            capacity: 1,
            waited: Duration::from_millis(1),
        };
        let refused = invoke_refused(&busy);
        assert_eq!(refused.kind, GuestErrorKind::Retryable);
        assert_eq!(Err(refused), server(Err(busy)));
    }
}
