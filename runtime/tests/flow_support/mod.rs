//! Shared helpers of the flow engine's integration tests (`flow_*.rs`): a catalog of
//! the real `hello` and `hello-flow` guests, compiling YAML definitions against it,
//! an engine whose retry delays are recorded instead of slept, and a run environment
//! with in-memory state and logs.

#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sluice_runtime::flow::{
    Definition, EngineOptions, ExecutionRecord, FlowEngine, InvalidDefinition, MemoryCatalog,
    MemoryResultStore, Plan, RunEnv, Sleeper, compile, json_request,
};
use sluice_runtime::{
    Capabilities, ExecutionContext, Limits, MemoryLogSink, MemoryStateStore, Runtime,
    RuntimeConfig, guest_build,
};

/// The guests' bytes, built once per test binary.
fn guest(name: &str) -> &'static [u8] {
    static HELLO: OnceLock<Vec<u8>> = OnceLock::new();
    static HELLO_FLOW: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = match name {
        "hello" => &HELLO,
        "hello-flow" => &HELLO_FLOW,
        other => panic!("no guest {other}"),
    };
    cell.get_or_init(|| {
        let path = guest_build::example(name).unwrap_or_else(|err| panic!("{err}"));
        std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    })
}

/// One turn per tenant, the strictest setting: a code-native flow's `invoke` runs the
/// action's execution inside its own, which must run in the flow's turn.
pub fn runtime() -> Runtime {
    Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(8)
            .tenant_parallelism(1)
            .busy_wait(Duration::from_secs(10)),
    )
    .expect("runtime")
}

/// A catalog of `hello` (0.1.0) and `hello-flow` (0.0.0).
pub async fn catalog(runtime: &Runtime) -> MemoryCatalog {
    let mut catalog = MemoryCatalog::new();
    for name in ["hello", "hello-flow"] {
        catalog
            .add_bytes(runtime, guest(name), name)
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    catalog
}

/// Records the retry delays it is asked for, without sleeping.
#[derive(Default)]
pub struct RecordingSleeper {
    pub delays: Mutex<Vec<Duration>>,
}

#[async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, duration: Duration) {
        self.delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(duration);
    }
}

impl RecordingSleeper {
    pub fn delays(&self) -> Vec<Duration> {
        self.delays
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Everything a flow test needs.
pub struct Setup {
    pub runtime: Runtime,
    pub catalog: MemoryCatalog,
    pub engine: FlowEngine,
    pub sleeper: Arc<RecordingSleeper>,
    pub results: Arc<MemoryResultStore>,
    pub state: Arc<MemoryStateStore>,
    pub logs: MemoryLogSink,
    pub env: RunEnv,
}

pub async fn setup() -> Setup {
    setup_with(|options| options).await
}

pub async fn setup_with(edit: impl FnOnce(EngineOptions) -> EngineOptions) -> Setup {
    setup_on(runtime(), edit).await
}

/// [`setup_with`] on a runtime of the test's own (one with an artifact cache, say).
pub async fn setup_on(
    runtime: Runtime,
    edit: impl FnOnce(EngineOptions) -> EngineOptions,
) -> Setup {
    let catalog = catalog(&runtime).await;
    let sleeper = Arc::new(RecordingSleeper::default());
    let results = Arc::new(MemoryResultStore::new());
    let options = edit(EngineOptions {
        sleeper: sleeper.clone(),
        results: results.clone(),
        ..EngineOptions::default()
    });
    let engine = FlowEngine::with_options(runtime.clone(), options);
    let state = Arc::new(MemoryStateStore::new());
    let logs = MemoryLogSink::new();
    let env = RunEnv {
        context: context(),
        capabilities: Capabilities {
            state: state.clone(),
            log: Arc::new(logs.clone()),
            ..Capabilities::default()
        },
        limits: Limits::default(),
        deadline: None,
    };
    Setup {
        runtime,
        catalog,
        engine,
        sleeper,
        results,
        state,
        logs,
        env,
    }
}

pub fn context() -> ExecutionContext {
    ExecutionContext {
        tenant_id: "tenant-a".into(),
        customer_id: Some("customer-1".into()),
        integration_id: "integration-1".into(),
        instance_id: "instance-1".into(),
        ..ExecutionContext::default()
    }
}

/// A definition with `hello` and `hello-flow` pinned around the given YAML flows.
pub fn definition(flows_yaml: &str) -> String {
    format!(
        "definitionVersion: 1\nname: Test\ncomponents:\n  hello: {{version: \"0.1.0\"}}\n  hello-flow: {{version: \"0.0.0\"}}\n{flows_yaml}"
    )
}

impl Setup {
    pub fn compile(&self, yaml: &str) -> Result<Plan, InvalidDefinition> {
        let definition = Definition::from_yaml(yaml)?;
        compile(&definition, &self.catalog)
    }

    pub fn plan(&self, yaml: &str) -> Plan {
        self.compile(yaml).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Runs `flow` of `yaml` with `payload` as the JSON body.
    pub async fn run(&self, yaml: &str, flow: &str, payload: Value) -> ExecutionRecord {
        let plan = self.plan(yaml);
        self.run_plan(&plan, flow, payload).await
    }

    pub async fn run_plan(&self, plan: &Plan, flow: &str, payload: Value) -> ExecutionRecord {
        self.engine
            .run(plan, flow, json_request(payload.to_string()), &self.env)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }
}

/// The inline result of the last run of `key`.
pub fn result(record: &ExecutionRecord, key: &str) -> Value {
    record
        .step(key)
        .unwrap_or_else(|| panic!("no step `{key}` in {:#?}", keys(record)))
        .result_value()
        .cloned()
        .unwrap_or_else(|| panic!("step `{key}` has no inline result"))
}

/// The keys of the record's steps, in order.
pub fn keys(record: &ExecutionRecord) -> Vec<String> {
    record.steps.iter().map(|step| step.key.clone()).collect()
}

/// The response body of a succeeded execution.
pub fn response_body(record: &ExecutionRecord) -> Value {
    match record
        .response
        .as_ref()
        .and_then(|response| response.body.as_ref())
    {
        Some(sluice_runtime::flow::RecordedValue::Inline(value)) => value.as_ref().clone(),
        other => panic!("no inline response body: {other:?}"),
    }
}
