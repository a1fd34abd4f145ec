//! Validation of a definition, and its compilation into a [`Plan`]: every problem is
//! reported with its path in the file (`flows[0].steps[3].inputs.ticketId`), all of
//! them at once, and nothing can run from a definition that has any.
//!
//! This module holds the errors, the entry points and the compiler's state; each
//! submodule checks one part of a definition.

mod actions;
mod branches;
mod code;
mod flows;
mod integration;
mod loops;
mod references;
mod schedules;
mod step_cap;
mod steps;
mod triggers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::catalog::{CatalogEntry, ComponentCatalog};
use super::definition::{ConfigVarType, DEFINITION_VERSION, Definition, FlowEvent};
use super::keys::{camel_case_key, check_step_key};
use super::plan::{IntegrationPlan, Plan};

pub use code::{CODE_ENGINE_KEY, MAX_CODE_BYTES};
pub(crate) use step_cap::loop_count;
pub(crate) use triggers::{response_headers, response_status};

/// The key of the trigger in references (`trigger.results.body`).
pub const TRIGGER_KEY: &str = "trigger";
/// Most retries a step may ask for (seed §3.5).
pub const MAX_RETRIES: u32 = 5;
/// Longest delay between attempts, in seconds (seed §3.5).
pub const MAX_DELAY_SECONDS: u32 = 60;
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_DELAY_SECONDS: u32 = 1;

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Where in the file: `flows[0].steps[3].inputs.ticketId` (empty for the document).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// For syntax errors, where the parser stopped.
    pub line: Option<u64>,
    /// For syntax errors, the column where the parser stopped.
    pub column: Option<u64>,
}

impl ValidationError {
    /// An error at `path` (no line or column).
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            path: path.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.line, &self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A definition that cannot run, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDefinition {
    /// Every problem found, in document order.
    pub errors: Vec<ValidationError>,
}

impl InvalidDefinition {
    /// A definition with one problem.
    pub fn single(error: ValidationError) -> Self {
        InvalidDefinition {
            errors: vec![error],
        }
    }
}

impl fmt::Display for InvalidDefinition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        write!(
            f,
            "invalid flow definition ({count} error{})",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidDefinition {}

/// Step runs one execution may make unless the embedder sets another cap
/// (`EngineOptions::max_step_runs`; `--max-step-runs` of `sluice serve` and
/// `sluice flow`). Every step of every iteration counts.
pub const DEFAULT_MAX_STEP_RUNS: usize = 10_000;

/// Checks a definition. Without a catalog, what depends on the components (their
/// existence, actions and input schemas) is not checked. Loops are checked against
/// [`DEFAULT_MAX_STEP_RUNS`].
pub fn validate(
    definition: &Definition,
    catalog: Option<&dyn ComponentCatalog>,
) -> Result<(), InvalidDefinition> {
    validate_with(definition, catalog, DEFAULT_MAX_STEP_RUNS)
}

/// [`validate`] for an engine whose cap on step runs is `max_step_runs`.
pub fn validate_with(
    definition: &Definition,
    catalog: Option<&dyn ComponentCatalog>,
    max_step_runs: usize,
) -> Result<(), InvalidDefinition> {
    Compiler::new(catalog, max_step_runs)
        .run(definition)
        .map(|_| ())
}

/// Validates a definition against a catalog and compiles it into a [`Plan`] for an
/// engine with the default cap on step runs ([`DEFAULT_MAX_STEP_RUNS`]).
pub fn compile(
    definition: &Definition,
    catalog: &dyn ComponentCatalog,
) -> Result<Plan, InvalidDefinition> {
    compile_with(definition, catalog, DEFAULT_MAX_STEP_RUNS)
}

/// [`compile`] for an engine whose cap on step runs is `max_step_runs`: a loop with a
/// constant count that cannot end early and would run more steps than that is
/// refused here rather than failing every execution with a `limit` error.
pub fn compile_with(
    definition: &Definition,
    catalog: &dyn ComponentCatalog,
    max_step_runs: usize,
) -> Result<Plan, InvalidDefinition> {
    match Compiler::new(Some(catalog), max_step_runs).run(definition)? {
        Some(plan) => Ok(plan),
        // Unreachable with a catalog: every missing entry is an error.
        None => Err(InvalidDefinition::single(ValidationError::at(
            "",
            "internal error: the definition compiled without its components",
        ))),
    }
}

/// Appends a map key to a path: `.name`, or `["odd name"]` when it needs quoting.
fn key_path(path: &str, key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    } else {
        format!("{path}[{}]", Value::String(key.to_string()))
    }
}

fn json_key(name: &str) -> String {
    Value::String(name.to_string()).to_string()
}

/// What the first pass learns about each step of a flow.
#[derive(Debug, Clone)]
struct StepInfo {
    slot: usize,
    is_loop: bool,
}

/// The state of compiling one flow.
struct FlowScope {
    /// Every step of the flow, by key.
    steps: HashMap<String, StepInfo>,
    /// Steps whose results a step at the current position may read.
    visible: HashSet<String>,
    /// Loops enclosing the current position, innermost last.
    loops: Vec<String>,
    /// The step being compiled, and branch or loop steps still running around it.
    running: Vec<String>,
    next_slot: usize,
}

impl FlowScope {
    /// A flow's steps: each may read the trigger's results.
    fn for_steps() -> Self {
        FlowScope::new(HashSet::from([TRIGGER_KEY.to_string()]), Vec::new())
    }

    /// The trigger's inputs: the trigger runs first, so they read no results.
    fn for_trigger() -> Self {
        FlowScope::new(HashSet::new(), vec![TRIGGER_KEY.to_string()])
    }

    fn new(visible: HashSet<String>, running: Vec<String>) -> Self {
        FlowScope {
            steps: HashMap::new(),
            visible,
            loops: Vec::new(),
            running,
            next_slot: 1,
        }
    }
}

struct Compiler<'a> {
    catalog: Option<&'a dyn ComponentCatalog>,
    errors: Vec<ValidationError>,
    /// Pinned components: `None` when unresolved (no catalog, or an error).
    components: BTreeMap<String, Option<CatalogEntry>>,
    config: HashMap<String, usize>,
    /// Data type of each config variable, for the ones a field needs of one type.
    config_types: HashMap<String, ConfigVarType>,
    /// Every flow of the integration by key, with the event it runs on, so that
    /// `invokeFlow` steps can name flows defined after theirs.
    flow_events: HashMap<String, Option<FlowEvent>>,
    /// The key of the flow being compiled.
    current_flow: String,
    /// The engine's cap on step runs per execution, which loops are checked against.
    max_step_runs: usize,
    /// Every code step's source, for the engine's syntax check at publish time.
    code_steps: Vec<super::plan::CodeStepSource>,
}

impl<'a> Compiler<'a> {
    fn new(catalog: Option<&'a dyn ComponentCatalog>, max_step_runs: usize) -> Self {
        Compiler {
            max_step_runs,
            catalog,
            errors: Vec::new(),
            components: BTreeMap::new(),
            config: HashMap::new(),
            config_types: HashMap::new(),
            flow_events: HashMap::new(),
            current_flow: String::new(),
            code_steps: Vec::new(),
        }
    }

    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError::at(path, message));
    }

    fn run(mut self, definition: &Definition) -> Result<Option<Plan>, InvalidDefinition> {
        if definition.definition_version != DEFINITION_VERSION {
            self.error(
                "definitionVersion",
                format!(
                    "unsupported definitionVersion {} (this engine reads version \
                     {DEFINITION_VERSION})",
                    definition.definition_version
                ),
            );
        }
        if definition.name.trim().is_empty() {
            self.error("name", "the integration needs a name");
        }
        self.components(definition);
        let config_vars = self.config_vars(definition);
        if definition.flows.is_empty() {
            self.error("flows", "an integration needs at least one flow");
        }
        // Keys as `entity_key` derives them; malformed ones are reported below.
        for flow in &definition.flows {
            if let Some(key) = flow
                .key
                .clone()
                .or_else(|| flow.name.as_deref().map(camel_case_key))
            {
                self.flow_events.entry(key).or_insert(flow.on);
            }
        }
        let mut flow_keys = HashSet::new();
        let mut flows = Vec::new();
        for (index, flow) in definition.flows.iter().enumerate() {
            let path = format!("flows[{index}]");
            let Some(key) = self.entity_key(&path, flow.key.as_deref(), flow.name.as_deref())
            else {
                continue;
            };
            if !flow_keys.insert(key.clone()) {
                self.error(format!("{path}.key"), format!("duplicate flow key `{key}`"));
            }
            if let Some(plan) = self.flow(&path, key, flow) {
                flows.push(plan);
            }
        }
        if !self.errors.is_empty() {
            return Err(InvalidDefinition {
                errors: self.errors,
            });
        }
        if self.catalog.is_none() || flows.len() != definition.flows.len() {
            return Ok(None);
        }
        let components = self
            .components
            .into_iter()
            .filter_map(|(key, entry)| entry.map(|entry| (key, entry)))
            .collect();
        Ok(Some(Plan {
            inner: Arc::new(IntegrationPlan {
                name: definition.name.clone(),
                components,
                config_vars,
                flows,
                code_steps: self.code_steps,
            }),
        }))
    }

    /// The key of a flow or step: `key`, else the camelCase of `name`.
    fn entity_key(&mut self, path: &str, key: Option<&str>, name: Option<&str>) -> Option<String> {
        let (key, key_path) = match (key, name) {
            (Some(key), _) => (key.to_string(), format!("{path}.key")),
            (None, Some(name)) => (camel_case_key(name), format!("{path}.name")),
            (None, None) => {
                self.error(path, "needs a `key` (or a `name` to derive the key from)");
                return None;
            }
        };
        if let Err(message) = check_step_key(&key) {
            self.error(key_path, message);
            return None;
        }
        Some(key)
    }
}
