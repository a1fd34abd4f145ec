//! The flow engine: declarative integrations (YAML or JSON, see `docs/flows.md`) and
//! code-native flows, validated and compiled once into a [`Plan`], then executed step
//! by step, each action in a sandbox of its own, into an [`ExecutionRecord`].
//!
//! ```no_run
//! use sluice_runtime::flow::{Definition, FlowEngine, MemoryCatalog, RunEnv, compile, json_request};
//! use sluice_runtime::{Runtime, RuntimeConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let catalog = MemoryCatalog::load_dir(&runtime, "components/".as_ref()).await?;
//! let definition = Definition::from_yaml(&std::fs::read_to_string("integration.yaml")?)?;
//! let plan = compile(&definition, &catalog)?;
//! let engine = FlowEngine::new(runtime);
//! let record = engine
//!     .run(&plan, "sync", json_request(r#"{"issue": {"number": 13}}"#), &RunEnv::default())
//!     .await?;
//! println!("{:?}: {} steps", record.status, record.steps.len());
//! # Ok(()) }
//! ```

pub mod catalog;
mod code_step;
pub mod definition;
pub mod executor;
pub mod expression;
pub mod keys;
pub mod launcher;
mod logs;
mod plan;
pub mod record;
pub mod reference;
pub mod scenario;
pub mod schedule;
pub mod schema;
pub mod state;
pub mod template;
pub mod validate;

pub use catalog::{
    CatalogEntry, CatalogError, ComponentCatalog, ComponentManifest, InputSchema, MemoryCatalog,
    SkippedFile,
};
pub use code_step::check_code_steps;
pub use definition::{
    BranchOnExpression, BranchOnValue, BreakLoop, CodeFlow, Complex, ComponentPin, Condition,
    ConfigVar, ConfigVarType, ConnectionTypeRef, DEFINITION_VERSION, DataSourceRef, Definition,
    ErrorConfig, ErrorHandler, ExpressionBranch, Flow, FlowEvent, FlowQueue, FlowRetry, Format,
    Input, InvokeFlow, LoopNTimes, LoopOverItems, MAX_DOCUMENT_DEPTH, MAX_FLOW_RETRIES,
    MAX_FLOW_RETRY_DELAY_MINUTES, MAX_STEP_DEPTH, Schedule, Step, StopExecution, Trigger,
    ValueBranch,
};
pub use executor::{
    EngineOptions, FlowEngine, InstanceHook, RunEnv, RunError, Sleeper, TokioSleeper,
    code_flow_payload, data_value, json_request, trigger_results,
};
pub use expression::{Expr, ExpressionError, Operator, compare};
pub use keys::camel_case_key;
pub use launcher::{FlowLaunch, FlowLauncher, Launched};
pub use plan::{CodeStepSource, FlowPolicy, Plan};
pub use record::{
    AttemptRecord, ExecutionRecord, ExecutionStatus, FlowKind, FlowResponse, InputSummary,
    MemoryResultStore, RecordedValue, ResultStore, StepError, StepErrorKind, StepKind, StepRecord,
    StepStatus,
};
pub use scenario::{
    Expectation, Implementation, Observation, Scenario, ScenarioError, ScenarioEvent,
    ScenarioRequest, ScenarioRun,
};
pub use schedule::{CronSchedule, ScheduleError, ScheduleSource};
pub use state::ExecutionState;
pub use validate::{
    CODE_ENGINE_KEY, DEFAULT_MAX_STEP_RUNS, InvalidDefinition, MAX_CODE_BYTES, TRIGGER_KEY,
    ValidationError, compile, compile_with, validate, validate_with,
};
