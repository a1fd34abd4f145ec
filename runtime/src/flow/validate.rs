//! Validation of a definition, and its compilation into a [`Plan`]: every problem is
//! reported with its path in the file (`flows[0].steps[3].inputs.ticketId`), all of
//! them at once, and nothing can run from a definition that has any.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::catalog::{CatalogEntry, ComponentCatalog, InputSchema, parse_hash};
use super::definition::{
    Complex, ConfigVarType, DEFINITION_VERSION, Definition, ErrorConfig, ErrorHandler, Flow,
    FlowEvent, Input, InvokeFlow, Step, Trigger,
};
use super::expression::{Expr, string_to_number};
use super::keys::{camel_case_key, check_component_key, check_config_key, check_step_key};
use super::plan::{
    ActionNode, BranchOnExpressionNode, BranchOnValueNode, CInput, CPart, CRef, ConfigVarPlan,
    ErrorPolicy, Fields, FlowBody, FlowPlan, IntegrationPlan, InvokeFlowNode, LoopNode, Node, Plan,
    StopNode, TriggerPlan,
};
use super::reference::{RefField, Reference};
use super::schedule::{CronSchedule, ScheduleSource, parse_timezone};
use super::template::{self, TemplatePart};
use crate::World;

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
    pub message: String,
    /// For syntax errors, where the parser stopped.
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl ValidationError {
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
    pub errors: Vec<ValidationError>,
}

impl InvalidDefinition {
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

    fn components(&mut self, definition: &Definition) {
        for (key, pin) in &definition.components {
            let path = key_path("components", key);
            if let Err(message) = check_component_key(key) {
                self.error(path, message);
                self.components.insert(key.clone(), None);
                continue;
            }
            let Some(catalog) = self.catalog else {
                if let Some(hash) = &pin.hash
                    && let Err(message) = parse_hash(hash)
                {
                    self.error(format!("{path}.hash"), message);
                }
                self.components.insert(key.clone(), None);
                continue;
            };
            let entry = catalog.lookup(key, &pin.version);
            match &entry {
                None => {
                    let versions = catalog.versions(key);
                    let known = if versions.is_empty() {
                        "the catalog has no component with this key".to_string()
                    } else {
                        format!("the catalog has versions {}", versions.join(", "))
                    };
                    self.error(
                        format!("{path}.version"),
                        format!(
                            "unknown component `{key}` version `{}`: {known}",
                            pin.version
                        ),
                    );
                }
                Some(entry) => {
                    if let Some(hash) = &pin.hash {
                        match parse_hash(hash) {
                            Err(message) => self.error(format!("{path}.hash"), message),
                            Ok(hash) if hash != entry.component.hash() => self.error(
                                format!("{path}.hash"),
                                format!(
                                    "component `{key}` version `{}` has hash {}, not the pinned \
                                     {hash}",
                                    pin.version,
                                    entry.component.hash()
                                ),
                            ),
                            Ok(_) => {}
                        }
                    }
                }
            }
            self.components.insert(key.clone(), entry);
        }
    }

    fn config_vars(&mut self, definition: &Definition) -> Vec<ConfigVarPlan> {
        let mut plans = Vec::new();
        for (index, var) in definition.config_vars.iter().enumerate() {
            let path = format!("configVars[{index}]");
            if let Err(message) = check_config_key(&var.key) {
                self.error(format!("{path}.key"), message);
                continue;
            }
            if self.config.contains_key(&var.key) {
                self.error(
                    format!("{path}.key"),
                    format!("duplicate config variable `{}`", var.key),
                );
                continue;
            }
            if let Some(default) = &var.default_value {
                let fits = match var.data_type {
                    ConfigVarType::String => default.is_string(),
                    ConfigVarType::Number => default.is_number(),
                    ConfigVarType::Boolean => default.is_boolean(),
                    _ => true,
                };
                if !fits {
                    self.error(
                        format!("{path}.defaultValue"),
                        format!(
                            "the default value {default} does not have the variable's data type"
                        ),
                    );
                }
            }
            if var.data_type == ConfigVarType::Schedule
                && let Some(default) = &var.default_value
                && let Err(err) = CronSchedule::from_value(default)
            {
                self.error(format!("{path}.defaultValue"), err.to_string());
            }
            self.config_types.insert(var.key.clone(), var.data_type);
            self.config.insert(var.key.clone(), plans.len());
            plans.push(ConfigVarPlan {
                key: var.key.clone(),
                default: var.default_value.clone(),
            });
        }
        plans
    }

    /// The pinned component `key`, checked to be of `world`; `Err` after reporting.
    fn component(
        &mut self,
        path: &str,
        key: &str,
        world: World,
    ) -> Result<Option<CatalogEntry>, ()> {
        match self.components.get(key) {
            None => {
                let pinned: Vec<&String> = self.components.keys().collect();
                self.error(
                    path,
                    format!(
                        "unknown component `{key}`: it is not pinned in `components` (pinned: {})",
                        if pinned.is_empty() {
                            "none".to_string()
                        } else {
                            pinned
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                );
                Err(())
            }
            Some(None) => Ok(None),
            Some(Some(entry)) if entry.component.world() != world => {
                let message = match world {
                    World::Component => format!(
                        "`{key}` is a code-native flow (world `flow`), not a component with actions"
                    ),
                    World::Flow => format!(
                        "`{key}` is a component (world `component`), not a code-native flow"
                    ),
                };
                self.error(path, message);
                Err(())
            }
            Some(Some(entry)) => Ok(Some(entry.clone())),
        }
    }

    fn flow(&mut self, path: &str, key: String, flow: &Flow) -> Option<FlowPlan> {
        let errors_before = self.errors.len();
        self.current_flow.clone_from(&key);
        let mut scope = FlowScope {
            steps: HashMap::new(),
            visible: HashSet::new(),
            loops: Vec::new(),
            running: Vec::new(),
            next_slot: 1,
        };
        scope.visible.insert(TRIGGER_KEY.to_string());
        let trigger = match (&flow.trigger, flow.on) {
            (None, _) => Some(TriggerPlan::Webhook),
            (Some(_), Some(_)) => {
                self.error(
                    format!("{path}.trigger"),
                    "a flow that runs `on` an instance event gets no request: it takes no trigger",
                );
                None
            }
            (Some(trigger), None) => self.trigger(&format!("{path}.trigger"), trigger),
        };
        let schedule = self.schedule(path, flow);
        self.flow_policy(path, flow);
        if flow.on.is_some() && flow.synchronous {
            self.error(
                format!("{path}.synchronous"),
                "a flow that runs `on` an instance event has no webhook to answer synchronously",
            );
        }
        let body = match (&flow.code, flow.steps.is_empty()) {
            (Some(_), false) => {
                self.error(
                    format!("{path}.steps"),
                    "a code-native flow (`code`) has no steps",
                );
                None
            }
            (Some(code), true) => {
                let code_path = format!("{path}.code.component");
                match self.component(&code_path, &code.component, World::Flow) {
                    Ok(Some(entry)) => Some(FlowBody::Code {
                        key: Arc::from(code.component.as_str()),
                        entry,
                    }),
                    _ => None,
                }
            }
            (None, true) => {
                self.error(
                    format!("{path}.steps"),
                    "a flow needs at least one step (or `code` for a code-native flow)",
                );
                None
            }
            (None, false) => {
                let steps_path = format!("{path}.steps");
                self.collect_keys(&steps_path, &flow.steps, &mut scope);
                scope.next_slot = 1;
                let nodes = self.block(&steps_path, &flow.steps, &mut scope);
                Some(FlowBody::Steps(nodes))
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(FlowPlan {
            key: Arc::from(key.as_str()),
            policy: super::plan::FlowPolicy {
                singleton: flow.singleton,
                retry: flow.retry.clone(),
                fifo: flow.queue.as_ref().is_some_and(|queue| queue.fifo),
                dedupe_id: flow
                    .queue
                    .as_ref()
                    .and_then(|queue| queue.dedupe_id.clone()),
                time_limit: flow.time_limit_seconds.map(std::time::Duration::from_secs),
            },
            on: flow.on,
            synchronous: flow.synchronous,
            schedule: schedule?,
            trigger: trigger?,
            body: body?,
            slots: scope.next_slot,
        })
    }

    /// The queue settings of a flow: `retry`, `queue`, `singleton`, `timeLimitSeconds`.
    fn flow_policy(&mut self, path: &str, flow: &Flow) {
        use super::definition::{MAX_FLOW_RETRIES, MAX_FLOW_RETRY_DELAY_MINUTES};
        let asynchronous_only = |what: &str| {
            format!("a flow that runs `on` an instance event is not queued: it takes no `{what}`")
        };
        if let Some(retry) = &flow.retry {
            if flow.on.is_some() {
                self.error(format!("{path}.retry"), asynchronous_only("retry"));
            }
            if !(1..=MAX_FLOW_RETRIES).contains(&retry.attempts) {
                self.error(
                    format!("{path}.retry.attempts"),
                    format!(
                        "retries must be between 1 and {MAX_FLOW_RETRIES}, not {}",
                        retry.attempts
                    ),
                );
            }
            if retry.delay_minutes > MAX_FLOW_RETRY_DELAY_MINUTES {
                self.error(
                    format!("{path}.retry.delayMinutes"),
                    format!(
                        "the delay must be at most {MAX_FLOW_RETRY_DELAY_MINUTES} minutes (24 hours), not {}",
                        retry.delay_minutes
                    ),
                );
            }
            if let Some(at) = &retry.unique_request_id {
                self.request_path(&format!("{path}.retry.uniqueRequestId"), at);
            }
        }
        if let Some(queue) = &flow.queue {
            if flow.on.is_some() {
                self.error(format!("{path}.queue"), asynchronous_only("queue"));
            }
            if queue.fifo && flow.synchronous {
                self.error(
                    format!("{path}.queue.fifo"),
                    "a FIFO flow runs from its queue: it cannot also be `synchronous`",
                );
            }
            if let Some(at) = &queue.dedupe_id {
                if !queue.fifo {
                    self.error(
                        format!("{path}.queue.dedupeId"),
                        "dedupe ids apply to FIFO flows: set `fifo: true`",
                    );
                }
                self.request_path(&format!("{path}.queue.dedupeId"), at);
            }
        }
        if flow.singleton && flow.schedule.is_none() {
            self.error(
                format!("{path}.singleton"),
                "`singleton` applies to scheduled runs: the flow has no `schedule`",
            );
        }
        if let Some(seconds) = flow.time_limit_seconds
            && !(1..=86_400).contains(&seconds)
        {
            self.error(
                format!("{path}.timeLimitSeconds"),
                format!("the time limit must be between 1 and 86400 seconds, not {seconds}"),
            );
        }
    }

    /// A place in the trigger request: `body.<path>`, `headers.<name>` or
    /// `query.<name>`.
    fn request_path(&mut self, path: &str, at: &str) {
        let mut parts = at.split('.');
        let root = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        if !matches!(root, "body" | "headers" | "query")
            || rest.is_empty()
            || rest.iter().any(|part| part.is_empty())
            || (root != "body" && rest.len() != 1)
        {
            self.error(
                path.to_string(),
                format!(
                    "`{at}` is not a place in the request: use `body.<field>[.<field>...]`, `headers.<name>` or `query.<name>`"
                ),
            );
        }
    }

    fn trigger(&mut self, path: &str, trigger: &Trigger) -> Option<TriggerPlan> {
        let entry = self
            .component(
                &format!("{path}.component"),
                &trigger.component,
                World::Component,
            )
            .ok()?;
        let schema = match &entry {
            Some(entry) => match entry.manifest.triggers.get(&trigger.trigger) {
                Some(schema) => Some(schema.clone()),
                None => {
                    let known: Vec<&str> =
                        entry.manifest.triggers.keys().map(String::as_str).collect();
                    self.error(
                        format!("{path}.trigger"),
                        format!(
                            "unknown trigger `{}` of component `{}` (its triggers: {})",
                            trigger.trigger,
                            trigger.component,
                            if known.is_empty() {
                                "none".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                    return None;
                }
            },
            None => None,
        };
        let mut scope = FlowScope {
            steps: HashMap::new(),
            visible: HashSet::new(),
            loops: Vec::new(),
            running: vec![TRIGGER_KEY.to_string()],
            next_slot: 1,
        };
        let inputs = self.fields(&format!("{path}.inputs"), &trigger.inputs, &mut scope);
        if let Some(schema) = &schema {
            self.check_inputs(
                path,
                &trigger.inputs,
                &inputs,
                schema,
                &format!("{}.{}", trigger.component, trigger.trigger),
            );
        }
        Some(TriggerPlan::Component {
            component_key: Arc::from(trigger.component.as_str()),
            entry: entry?,
            trigger: trigger.trigger.clone(),
            inputs,
        })
    }

    /// Checks a flow's `schedule`: `Some(None)` when it has none, `None` after
    /// reporting errors.
    fn schedule(&mut self, path: &str, flow: &Flow) -> Option<Option<ScheduleSource>> {
        let Some(schedule) = &flow.schedule else {
            return Some(None);
        };
        let path = format!("{path}.schedule");
        if flow.on.is_some() {
            self.error(
                &path,
                "a flow that runs `on` an instance event cannot also run on a schedule",
            );
            return None;
        }
        match (&schedule.cron, &schedule.config_var) {
            (Some(cron), None) => {
                let timezone = match &schedule.timezone {
                    None => None,
                    Some(name) => match parse_timezone(name) {
                        Ok(_) => Some(name.as_str()),
                        Err(err) => {
                            self.error(format!("{path}.timezone"), err.to_string());
                            return None;
                        }
                    },
                };
                match CronSchedule::parse(cron, timezone) {
                    Ok(parsed) => Some(Some(ScheduleSource::Cron(Box::new(parsed)))),
                    Err(err) => {
                        self.error(format!("{path}.cron"), err.to_string());
                        None
                    }
                }
            }
            (None, Some(var)) => {
                let var_path = format!("{path}.configVar");
                if schedule.timezone.is_some() {
                    self.error(
                        format!("{path}.timezone"),
                        "`timezone` goes with `cron`: the value of the config variable \
                         carries its own time zone (`{cron, timezone}`)",
                    );
                }
                self.config_var(&var_path, var)?;
                match self.config_types.get(var) {
                    Some(ConfigVarType::Schedule) if schedule.timezone.is_none() => {
                        Some(Some(ScheduleSource::ConfigVar(var.clone())))
                    }
                    Some(ConfigVarType::Schedule) => None,
                    other => {
                        let found = other
                            .and_then(|kind| serde_json::to_value(kind).ok())
                            .and_then(|kind| kind.as_str().map(str::to_string))
                            .unwrap_or_default();
                        self.error(
                            var_path,
                            format!(
                                "config variable `{var}` has data type `{found}`; a schedule \
                                 reads one of data type `schedule`"
                            ),
                        );
                        None
                    }
                }
            }
            (Some(_), Some(_)) | (None, None) => {
                self.error(
                    path,
                    "a schedule is either `cron` (with an optional `timezone`) or `configVar`",
                );
                None
            }
        }
    }

    /// First pass over a flow: the key and slot of every step, in document order, so
    /// that references to unknown and to later steps can be told apart.
    fn collect_keys(&mut self, path: &str, steps: &[Step], scope: &mut FlowScope) {
        for (index, step) in steps.iter().enumerate() {
            let step_path = format!("{path}[{index}]");
            let key = self.entity_key(&step_path, step.key.as_deref(), step.name.as_deref());
            let slot = scope.next_slot;
            scope.next_slot += 1;
            if let Some(key) = key {
                if key == TRIGGER_KEY {
                    self.error(
                        key_field(&step_path, step),
                        "`trigger` is reserved for the flow's trigger",
                    );
                } else {
                    let is_loop = step.loop_over_items.is_some() || step.loop_n_times.is_some();
                    match scope.steps.entry(key) {
                        Entry::Occupied(taken) => self.error(
                            key_field(&step_path, step),
                            format!(
                                "duplicate step key `{}`: step keys are unique in a flow",
                                taken.key()
                            ),
                        ),
                        Entry::Vacant(free) => {
                            free.insert(StepInfo { slot, is_loop });
                        }
                    }
                }
            }
            for (child_path, children) in children(&step_path, step) {
                self.collect_keys(&child_path, children, scope);
            }
        }
    }

    fn block(&mut self, path: &str, steps: &[Step], scope: &mut FlowScope) -> Vec<Node> {
        let mut nodes = Vec::with_capacity(steps.len());
        for (index, step) in steps.iter().enumerate() {
            let step_path = format!("{path}[{index}]");
            if let Some(node) = self.step(&step_path, step, scope) {
                nodes.push(node);
            }
        }
        nodes
    }

    fn step(&mut self, path: &str, step: &Step, scope: &mut FlowScope) -> Option<Node> {
        let slot = scope.next_slot;
        scope.next_slot += 1;
        // Keys were checked by the first pass; a step whose key is unusable still has
        // its contents checked, under a placeholder.
        let key = step
            .key
            .clone()
            .or_else(|| step.name.as_deref().map(camel_case_key))
            .unwrap_or_default();
        let kinds: Vec<&str> = [
            ("action", step.action.is_some()),
            ("branchOnValue", step.branch_on_value.is_some()),
            ("branchOnExpression", step.branch_on_expression.is_some()),
            ("loopOverItems", step.loop_over_items.is_some()),
            ("loopNTimes", step.loop_n_times.is_some()),
            ("breakLoop", step.break_loop.is_some()),
            ("stopExecution", step.stop_execution.is_some()),
            ("invokeFlow", step.invoke_flow.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if kinds.len() != 1 {
            self.error(
                path,
                if kinds.is_empty() {
                    "a step needs one of `action`, `branchOnValue`, `branchOnExpression`, \
                     `loopOverItems`, `loopNTimes`, `breakLoop`, `stopExecution` or `invokeFlow`"
                        .to_string()
                } else {
                    format!(
                        "a step does one thing, but this one sets {}",
                        kinds
                            .iter()
                            .map(|kind| format!("`{kind}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )
                },
            );
            // The children still get their slots and checks.
            for (child_path, children) in children(path, step) {
                self.block(&child_path, children, scope);
            }
            return None;
        }
        if step.action.is_none() {
            if !step.inputs.is_empty() {
                self.error(
                    format!("{path}.inputs"),
                    "`inputs` belong to action steps; control steps take theirs inside their \
                     own block",
                );
            }
            if step.error_config.is_some() && step.invoke_flow.is_none() {
                self.error(
                    format!("{path}.errorConfig"),
                    "`errorConfig` applies to action steps only (and `invokeFlow` steps)",
                );
            }
        }
        let key_arc: Arc<str> = Arc::from(key.as_str());
        scope.running.push(key.clone());
        let node = if let Some(action) = &step.action {
            self.action(path, step, action, slot, key_arc, scope)
        } else if let Some(branch) = &step.branch_on_value {
            let value = self.input(&format!("{path}.branchOnValue.value"), &branch.value, scope);
            let names = self.branch_names(
                &format!("{path}.branchOnValue"),
                branch.branches.iter().map(|b| b.name.as_str()),
            );
            let before = scope.visible.clone();
            scope.visible.insert(key.clone());
            let mut added = HashSet::new();
            let mut branches = Vec::new();
            for (index, (name, b)) in names.iter().zip(&branch.branches).enumerate() {
                let branch_path = format!("{path}.branchOnValue.branches[{index}]");
                let value = self.input(&format!("{branch_path}.value"), &b.value, scope);
                let steps = self.block(&format!("{branch_path}.steps"), &b.steps, scope);
                added.extend(scope.visible.drain().filter(|k| !before.contains(k)));
                scope.visible = before.clone();
                scope.visible.insert(key.clone());
                if let Some(value) = value {
                    branches.push((Arc::clone(name), value, steps));
                }
            }
            let else_steps = self.block(
                &format!("{path}.branchOnValue.else"),
                &branch.else_steps,
                scope,
            );
            scope.visible.extend(added);
            value.map(|value| {
                Node::BranchOnValue(BranchOnValueNode {
                    slot,
                    key: key_arc,
                    value,
                    branches,
                    else_steps,
                })
            })
        } else if let Some(branch) = &step.branch_on_expression {
            let names = self.branch_names(
                &format!("{path}.branchOnExpression"),
                branch.branches.iter().map(|b| b.name.as_str()),
            );
            let before = scope.visible.clone();
            let mut added = HashSet::new();
            let mut branches = Vec::new();
            for (index, (name, b)) in names.iter().zip(&branch.branches).enumerate() {
                let branch_path = format!("{path}.branchOnExpression.branches[{index}]");
                // Conditions are evaluated before the branch step has a result.
                let condition =
                    self.condition(&format!("{branch_path}.condition"), &b.condition.0, scope);
                scope.visible.insert(key.clone());
                let steps = self.block(&format!("{branch_path}.steps"), &b.steps, scope);
                added.extend(scope.visible.drain().filter(|k| !before.contains(k)));
                scope.visible = before.clone();
                if let Some(condition) = condition {
                    branches.push((Arc::clone(name), condition, steps));
                }
            }
            scope.visible.insert(key.clone());
            let else_steps = self.block(
                &format!("{path}.branchOnExpression.else"),
                &branch.else_steps,
                scope,
            );
            scope.visible.extend(added);
            Some(Node::BranchOnExpression(BranchOnExpressionNode {
                slot,
                key: key_arc,
                branches,
                else_steps,
            }))
        } else if let Some(each) = &step.loop_over_items {
            let items_path = format!("{path}.loopOverItems.items");
            let source = self.input(&items_path, &each.items, scope);
            if let Some(items) = source.as_ref().and_then(CInput::as_const)
                && !items.is_array()
            {
                self.error(&items_path, format!("`items` must be a list, got {items}"));
            }
            self.loop_node(
                path,
                "loopOverItems",
                &each.steps,
                slot,
                key_arc,
                source,
                scope,
            )
            .map(Node::LoopOverItems)
        } else if let Some(repeat) = &step.loop_n_times {
            let count_path = format!("{path}.loopNTimes.count");
            let source = self.input(&count_path, &repeat.count, scope);
            if let Some(count) = source.as_ref().and_then(CInput::as_const) {
                match loop_count(count) {
                    Err(message) => self.error(&count_path, message),
                    Ok(count) if !may_end_early(&repeat.steps, true) => {
                        let runs = min_step_runs(step);
                        if runs > self.max_step_runs as u128 {
                            self.error(
                                &count_path,
                                format!(
                                    "`count` {count} runs at least {runs} steps, more than the \
                                     {} step runs an execution may make (the engine's cap: \
                                     `--max-step-runs` of `sluice serve` and `sluice flow`)",
                                    self.max_step_runs
                                ),
                            );
                        }
                    }
                    Ok(_) => {}
                }
            }
            self.loop_node(
                path,
                "loopNTimes",
                &repeat.steps,
                slot,
                key_arc,
                source,
                scope,
            )
            .map(Node::LoopNTimes)
        } else if step.break_loop.is_some() {
            if scope.loops.is_empty() {
                self.error(
                    format!("{path}.breakLoop"),
                    "`breakLoop` is only allowed inside a loop",
                );
            }
            Some(Node::Break { key: key_arc })
        } else if let Some(stop) = &step.stop_execution {
            self.stop(path, stop, key_arc, scope).map(Node::Stop)
        } else if let Some(invoke) = &step.invoke_flow {
            let policy = self.error_policy(path, step.error_config.as_ref());
            self.invoke_flow(path, invoke, slot, key_arc, scope)
                .and_then(|node| {
                    Some(Node::InvokeFlow(InvokeFlowNode {
                        policy: policy?,
                        ..node
                    }))
                })
        } else {
            None
        };
        scope.running.pop();
        scope.visible.insert(key);
        node
    }

    #[allow(clippy::too_many_arguments)]
    fn loop_node(
        &mut self,
        path: &str,
        kind: &str,
        steps: &[Step],
        slot: usize,
        key: Arc<str>,
        source: Option<CInput>,
        scope: &mut FlowScope,
    ) -> Option<LoopNode> {
        let steps_path = format!("{path}.{kind}.steps");
        if steps.is_empty() {
            self.error(&steps_path, "a loop needs at least one step");
        }
        scope.loops.push(key.to_string());
        let first = scope.next_slot;
        let body = self.block(&steps_path, steps, scope);
        let body_slots = first..scope.next_slot;
        scope.loops.pop();
        Some(LoopNode {
            slot,
            key,
            source: source?,
            body,
            body_slots,
        })
    }

    fn branch_names<'n>(
        &mut self,
        path: &str,
        names: impl Iterator<Item = &'n str>,
    ) -> Vec<Arc<str>> {
        let names: Vec<&str> = names.collect();
        if names.is_empty() {
            self.error(
                format!("{path}.branches"),
                "a branch step needs at least one branch",
            );
        }
        let mut seen = HashSet::new();
        for (index, name) in names.iter().enumerate() {
            let name_path = format!("{path}.branches[{index}].name");
            if name.trim().is_empty() {
                self.error(name_path, "a branch needs a name");
            } else if name.eq_ignore_ascii_case("else") {
                self.error(
                    name_path,
                    "`Else` is the name of the `else` branch; give this branch another name",
                );
            } else if !seen.insert(*name) {
                self.error(name_path, format!("duplicate branch name `{name}`"));
            }
        }
        names.into_iter().map(Arc::from).collect()
    }

    fn condition(
        &mut self,
        path: &str,
        condition: &Value,
        scope: &mut FlowScope,
    ) -> Option<Expr<CInput>> {
        let parsed = match Expr::parse(condition) {
            Ok(parsed) => parsed,
            Err(err) => {
                self.error(format!("{path}{}", err.path), err.message);
                return None;
            }
        };
        self.condition_terms(path, &parsed, scope)
    }

    /// Compiles the terms of a parsed condition, each reported at its own path
    /// (`condition[2][1]`), every bad term at once.
    fn condition_terms(
        &mut self,
        path: &str,
        expr: &Expr<Input>,
        scope: &mut FlowScope,
    ) -> Option<Expr<CInput>> {
        let mut group = |this: &mut Self, children: &[Expr<Input>]| {
            let compiled: Vec<Option<Expr<CInput>>> = children
                .iter()
                .enumerate()
                .map(|(index, child)| {
                    this.condition_terms(&format!("{path}[{}]", index + 1), child, scope)
                })
                .collect();
            compiled.into_iter().collect::<Option<Vec<_>>>()
        };
        match expr {
            Expr::And(children) => group(self, children).map(Expr::And),
            Expr::Or(children) => group(self, children).map(Expr::Or),
            Expr::Compare { op, left, right } => {
                let left = self.input(&format!("{path}[1]"), left, scope);
                let right = right
                    .as_ref()
                    .map(|right| self.input(&format!("{path}[2]"), right, scope));
                Some(Expr::Compare {
                    op: *op,
                    left: left?,
                    right: match right {
                        Some(right) => Some(right?),
                        None => None,
                    },
                })
            }
        }
    }

    /// An `invokeFlow` step; its error policy is filled in by the caller.
    fn invoke_flow(
        &mut self,
        path: &str,
        invoke: &InvokeFlow,
        slot: usize,
        key: Arc<str>,
        scope: &mut FlowScope,
    ) -> Option<InvokeFlowNode> {
        let base = format!("{path}.invokeFlow");
        let payload = match &invoke.payload {
            Some(input) => self.input(&format!("{base}.payload"), input, scope),
            None => Some(CInput::constant(Value::Object(serde_json::Map::new()))),
        };
        let flow_path = format!("{base}.flow");
        match self.flow_events.get(&invoke.flow) {
            None => {
                let mut known: Vec<&str> = self.flow_events.keys().map(String::as_str).collect();
                known.sort_unstable();
                self.error(
                    flow_path,
                    format!(
                        "unknown flow `{}`: the integration's flows are {}",
                        invoke.flow,
                        known.join(", ")
                    ),
                );
                return None;
            }
            Some(Some(event)) => {
                let event = serde_json::to_value(event)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_string))
                    .unwrap_or_default();
                self.error(
                    flow_path,
                    format!(
                        "flow `{}` runs `on: {event}` and cannot be invoked",
                        invoke.flow
                    ),
                );
                return None;
            }
            Some(None) => {}
        }
        if invoke.synchronous && invoke.flow == self.current_flow {
            self.error(
                format!("{base}.synchronous"),
                format!(
                    "flow `{}` invokes itself synchronously, so every run would wait on the \
                     next; set `synchronous: false` to queue the next run instead",
                    invoke.flow
                ),
            );
            return None;
        }
        Some(InvokeFlowNode {
            slot,
            key,
            flow: Arc::from(invoke.flow.as_str()),
            payload: payload?,
            synchronous: invoke.synchronous,
            policy: ErrorPolicy {
                handler: ErrorHandler::Fail,
                max_retries: 0,
                delay_seconds: 0,
                exponential: false,
                ignore_final_error: false,
            },
        })
    }

    fn stop(
        &mut self,
        path: &str,
        stop: &super::definition::StopExecution,
        key: Arc<str>,
        scope: &mut FlowScope,
    ) -> Option<StopNode> {
        let base = format!("{path}.stopExecution");
        let mut field = |this: &mut Self, name: &str, input: &Option<Input>| {
            input
                .as_ref()
                .map(|input| this.input(&format!("{base}.{name}"), input, scope))
        };
        let status = field(self, "status", &stop.status);
        let headers = field(self, "headers", &stop.headers);
        let content_type = field(self, "contentType", &stop.content_type);
        let body = field(self, "body", &stop.body);
        if let Some(Some(status)) = &status
            && let Some(value) = status.as_const()
            && let Err(message) = response_status(value)
        {
            self.error(format!("{base}.status"), message);
        }
        if let Some(Some(headers)) = &headers
            && let Some(value) = headers.as_const()
            && let Err(message) = response_headers(value)
        {
            self.error(format!("{base}.headers"), message);
        }
        if let Some(Some(content_type)) = &content_type
            && let Some(value) = content_type.as_const()
            && !value.is_string()
        {
            self.error(
                format!("{base}.contentType"),
                "`contentType` must be a string",
            );
        }
        // `None` inside means the input had an error, already reported.
        Some(StopNode {
            key,
            status: status.map(|s| s.ok_or(())).transpose().ok()?,
            headers: headers.map(|s| s.ok_or(())).transpose().ok()?,
            content_type: content_type.map(|s| s.ok_or(())).transpose().ok()?,
            body: body.map(|s| s.ok_or(())).transpose().ok()?,
        })
    }

    fn action(
        &mut self,
        path: &str,
        step: &Step,
        action: &str,
        slot: usize,
        key: Arc<str>,
        scope: &mut FlowScope,
    ) -> Option<Node> {
        let action_path = format!("{path}.action");
        let policy = self.error_policy(path, step.error_config.as_ref());
        let inputs = self.fields(&format!("{path}.inputs"), &step.inputs, scope);
        let Some((component_key, action_name)) = action.split_once('.') else {
            self.error(
                action_path,
                format!("`{action}` is not `component.action` (for example `hello.echo`)"),
            );
            return None;
        };
        let entry = self
            .component(&action_path, component_key, World::Component)
            .ok()??;
        let Some(schema) = entry.manifest.actions.get(action_name).cloned() else {
            let known: Vec<&str> = entry.manifest.actions.keys().map(String::as_str).collect();
            self.error(
                action_path,
                format!(
                    "unknown action `{action_name}` of component `{component_key}` (its actions: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            return None;
        };
        self.check_inputs(path, &step.inputs, &inputs, &schema, action);
        Some(Node::Action(ActionNode {
            slot,
            key,
            component_key: Arc::from(component_key),
            action: action_name.to_string(),
            entry,
            inputs,
            schema,
            policy: policy?,
        }))
    }

    /// Checks a step's inputs against the schema before anything runs: names the
    /// schema does not declare, required names missing, and constant values.
    fn check_inputs(
        &mut self,
        path: &str,
        declared: &BTreeMap<String, Input>,
        compiled: &Fields,
        schema: &InputSchema,
        what: &str,
    ) {
        let inputs_path = format!("{path}.inputs");
        if let Some(properties) = schema.properties() {
            for name in declared.keys() {
                if !properties.contains(name) {
                    self.error(
                        key_path(&inputs_path, name),
                        format!(
                            "`{name}` is not an input of `{what}` (its inputs: {})",
                            properties.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
        }
        for name in schema.required() {
            if !declared.contains_key(name) {
                self.error(
                    &inputs_path,
                    format!("missing required input `{name}` of `{what}`"),
                );
            }
        }
        let constants: serde_json::Map<String, Value> = compiled
            .iter()
            .filter_map(|(name, _, input)| {
                input.as_const().map(|value| (name.clone(), value.clone()))
            })
            .collect();
        if let Err(problems) = schema.check_partial(&Value::Object(constants)) {
            for (pointer, message) in problems {
                let mut segments = pointer.split('/').skip(1);
                let at = match segments.next() {
                    Some(name) => {
                        let name = name.replace("~1", "/").replace("~0", "~");
                        let mut at = key_path(&inputs_path, &name);
                        for rest in segments {
                            at = format!("{at}/{rest}");
                        }
                        at
                    }
                    None => inputs_path.clone(),
                };
                self.error(
                    at,
                    format!("does not match the input schema of `{what}`: {message}"),
                );
            }
        }
    }

    fn error_policy(&mut self, path: &str, config: Option<&ErrorConfig>) -> Option<ErrorPolicy> {
        let Some(config) = config else {
            return Some(ErrorPolicy {
                handler: ErrorHandler::Fail,
                max_retries: 0,
                delay_seconds: 0,
                exponential: false,
                ignore_final_error: false,
            });
        };
        let base = format!("{path}.errorConfig");
        let before = self.errors.len();
        if config.error_handler_type != ErrorHandler::Retry {
            for (field, set) in [
                ("maxAttempts", config.max_attempts.is_some()),
                ("delaySeconds", config.delay_seconds.is_some()),
                ("usesExponentialBackoff", config.uses_exponential_backoff),
                ("ignoreFinalError", config.ignore_final_error),
            ] {
                if set {
                    self.error(
                        format!("{base}.{field}"),
                        format!("`{field}` applies only when `errorHandlerType` is `retry`"),
                    );
                }
            }
        }
        let max_retries = config.max_attempts.unwrap_or(DEFAULT_RETRIES);
        if max_retries > MAX_RETRIES {
            self.error(
                format!("{base}.maxAttempts"),
                format!("`maxAttempts` is 0 to {MAX_RETRIES}, got {max_retries}"),
            );
        }
        let delay_seconds = config.delay_seconds.unwrap_or(DEFAULT_DELAY_SECONDS);
        if delay_seconds > MAX_DELAY_SECONDS {
            self.error(
                format!("{base}.delaySeconds"),
                format!("`delaySeconds` is 0 to {MAX_DELAY_SECONDS}, got {delay_seconds}"),
            );
        }
        (self.errors.len() == before).then_some(ErrorPolicy {
            handler: config.error_handler_type,
            max_retries,
            delay_seconds,
            exponential: config.uses_exponential_backoff,
            ignore_final_error: config.ignore_final_error,
        })
    }

    fn fields(
        &mut self,
        path: &str,
        inputs: &BTreeMap<String, Input>,
        scope: &mut FlowScope,
    ) -> Fields {
        inputs
            .iter()
            .filter_map(|(name, input)| {
                self.input(&key_path(path, name), input, scope)
                    .map(|compiled| (name.clone(), json_key(name), compiled))
            })
            .collect()
    }

    /// Compiles one input; `None` after reporting errors.
    fn input(&mut self, path: &str, input: &Input, scope: &mut FlowScope) -> Option<CInput> {
        match input {
            Input::Value(value) => Some(CInput::constant(value.clone())),
            Input::Reference(text) => {
                let reference = match Reference::parse(text) {
                    Ok(reference) => reference,
                    Err(message) => {
                        self.error(path, message);
                        return None;
                    }
                };
                self.reference(path, &reference, scope).map(CInput::Ref)
            }
            Input::ConfigVar(key) => self.config_var(path, key).map(CInput::Config),
            Input::Template(text) => {
                let parts = match template::parse(text) {
                    Ok(parts) => parts,
                    Err(message) => {
                        self.error(path, format!("malformed template: {message}"));
                        return None;
                    }
                };
                let mut compiled = Vec::with_capacity(parts.len());
                let mut ok = true;
                for part in parts {
                    match part {
                        TemplatePart::Text(text) => compiled.push(CPart::Text(text)),
                        TemplatePart::Reference(reference) => {
                            match self.reference(path, &reference, scope) {
                                Some(compiled_ref) => compiled.push(CPart::Ref(compiled_ref)),
                                None => ok = false,
                            }
                        }
                        TemplatePart::ConfigVar(key) => match self.config_var(path, &key) {
                            Some(slot) => compiled.push(CPart::Config(slot)),
                            None => ok = false,
                        },
                    }
                }
                if !ok {
                    return None;
                }
                match compiled.as_slice() {
                    [] => Some(CInput::constant(Value::String(String::new()))),
                    [CPart::Text(text)] => Some(CInput::constant(Value::String(text.clone()))),
                    _ => Some(CInput::Template(compiled)),
                }
            }
            Input::Complex(Complex::List(items)) => {
                let mut compiled = Vec::with_capacity(items.len());
                let mut ok = true;
                for (index, item) in items.iter().enumerate() {
                    match self.input(&format!("{path}.value[{index}]"), item, scope) {
                        Some(item) => compiled.push(item),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                if compiled.iter().all(|item| item.as_const().is_some()) {
                    let values = compiled
                        .into_iter()
                        .filter_map(|item| match item {
                            CInput::Const { value, .. } => Some(value),
                            _ => None,
                        })
                        .collect();
                    return Some(CInput::constant(Value::Array(values)));
                }
                Some(CInput::List(compiled))
            }
            Input::Complex(Complex::Object(entries)) => {
                let before = self.errors.len();
                let fields = self.fields(&format!("{path}.value"), entries, scope);
                if self.errors.len() > before {
                    return None;
                }
                if fields
                    .iter()
                    .all(|(_, _, input)| input.as_const().is_some())
                {
                    let object = fields
                        .into_iter()
                        .filter_map(|(name, _, input)| match input {
                            CInput::Const { value, .. } => Some((name, value)),
                            _ => None,
                        })
                        .collect();
                    return Some(CInput::constant(Value::Object(object)));
                }
                Some(CInput::Object(fields))
            }
        }
    }

    fn config_var(&mut self, path: &str, key: &str) -> Option<usize> {
        match self.config.get(key) {
            Some(&slot) => Some(slot),
            None => {
                let mut known: Vec<&String> = self.config.keys().collect();
                known.sort();
                self.error(
                    path,
                    format!(
                        "unknown config variable `{key}` (declared: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                );
                None
            }
        }
    }

    fn reference(&mut self, path: &str, reference: &Reference, scope: &FlowScope) -> Option<CRef> {
        let root = reference.root.as_str();
        let compiled = |slot| CRef {
            slot,
            field: reference.field,
            path: reference.path.clone(),
        };
        if root == TRIGGER_KEY {
            if matches!(reference.field, RefField::CurrentItem | RefField::Index) {
                self.error(path, "the trigger is not a loop: use `trigger.results`");
                return None;
            }
            if scope.running.first().map(String::as_str) == Some(TRIGGER_KEY) {
                self.error(
                    path,
                    "trigger inputs cannot reference results: the trigger runs first",
                );
                return None;
            }
            return Some(compiled(0));
        }
        let Some(info) = scope.steps.get(root).cloned() else {
            self.error(
                path,
                format!("reference to unknown step `{root}`: no step of this flow has this key"),
            );
            return None;
        };
        match reference.field {
            RefField::CurrentItem | RefField::Index => {
                if !info.is_loop {
                    self.error(
                        path,
                        format!("`{root}` is not a loop, so it has no `currentItem` or `index`"),
                    );
                    return None;
                }
                if !scope.loops.iter().any(|key| key == root) {
                    self.error(
                        path,
                        format!(
                            "`{root}.{}` is only available inside the loop `{root}`",
                            if reference.field == RefField::Index {
                                "index"
                            } else {
                                "currentItem"
                            }
                        ),
                    );
                    return None;
                }
                Some(compiled(info.slot))
            }
            RefField::Results | RefField::Branch => {
                if scope.visible.contains(root) {
                    return Some(compiled(info.slot));
                }
                let message = if scope.running.last().map(String::as_str) == Some(root) {
                    "a step cannot reference its own result".to_string()
                } else if scope.running.iter().any(|key| key == root) {
                    format!(
                        "step `{root}` has not finished when this step runs (inside a loop, use \
                         `{root}.currentItem` or `{root}.index`)"
                    )
                } else {
                    format!(
                        "reference to step `{root}`, which does not precede this step (a \
                         reference reads a step that ran before it)"
                    )
                };
                self.error(path, message);
                None
            }
        }
    }
}

/// The path of the field that gave a step its key.
fn key_field(path: &str, step: &Step) -> String {
    if step.key.is_some() {
        format!("{path}.key")
    } else {
        format!("{path}.name")
    }
}

/// The nested step lists of a step, with their paths.
fn children<'s>(path: &str, step: &'s Step) -> Vec<(String, &'s [Step])> {
    let mut lists: Vec<(String, &[Step])> = Vec::new();
    if let Some(branch) = &step.branch_on_value {
        for (index, b) in branch.branches.iter().enumerate() {
            lists.push((
                format!("{path}.branchOnValue.branches[{index}].steps"),
                &b.steps,
            ));
        }
        lists.push((format!("{path}.branchOnValue.else"), &branch.else_steps));
    }
    if let Some(branch) = &step.branch_on_expression {
        for (index, b) in branch.branches.iter().enumerate() {
            lists.push((
                format!("{path}.branchOnExpression.branches[{index}].steps"),
                &b.steps,
            ));
        }
        lists.push((
            format!("{path}.branchOnExpression.else"),
            &branch.else_steps,
        ));
    }
    if let Some(each) = &step.loop_over_items {
        lists.push((format!("{path}.loopOverItems.steps"), &each.steps));
    }
    if let Some(repeat) = &step.loop_n_times {
        lists.push((format!("{path}.loopNTimes.steps"), &repeat.steps));
    }
    lists
}

/// A loop count: a non-negative integer (a numeric string counts). How many
/// iterations can run is bounded by the engine's cap on step runs, not here.
pub(crate) fn loop_count(value: &Value) -> Result<u64, String> {
    let number = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => Some(string_to_number(text)),
        _ => None,
    };
    match number {
        // 2^64 itself is not a u64.
        Some(n) if n.fract() == 0.0 && n >= 0.0 && n < u64::MAX as f64 => Ok(n as u64),
        _ => Err(format!(
            "`count` must be a whole number of 0 or more, got {value}"
        )),
    }
}

/// The fewest step runs `step` makes when it runs to its end: one for itself, and
/// for a loop whose count (or items) is constant, that many times the fewest of its
/// body. A branch counts one (its branches may be empty).
fn min_step_runs(step: &Step) -> u128 {
    let body = |steps: &[Step]| -> u128 {
        steps
            .iter()
            .map(min_step_runs)
            .fold(0u128, u128::saturating_add)
    };
    let times = if let Some(repeat) = &step.loop_n_times {
        match &repeat.count {
            Input::Value(value) => loop_count(value).map_or(0, u128::from),
            _ => 0,
        }
        .saturating_mul(if may_end_early(&repeat.steps, true) {
            0
        } else {
            body(&repeat.steps)
        })
    } else if let Some(each) = &step.loop_over_items {
        match &each.items {
            Input::Value(Value::Array(items)) if !may_end_early(&each.steps, true) => {
                (items.len() as u128).saturating_mul(body(&each.steps))
            }
            _ => 0,
        }
    } else {
        0
    };
    times.saturating_add(1)
}

/// Whether `steps` (a loop's body when `loop_body`) can end that loop before its
/// count: a `breakLoop` of this loop (not of a loop nested in it), or a
/// `stopExecution` anywhere.
fn may_end_early(steps: &[Step], loop_body: bool) -> bool {
    steps.iter().any(|step| {
        if step.stop_execution.is_some() || (loop_body && step.break_loop.is_some()) {
            return true;
        }
        let nested_loop = step.loop_n_times.is_some() || step.loop_over_items.is_some();
        children("", step)
            .into_iter()
            .any(|(_, inner)| may_end_early(inner, loop_body && !nested_loop))
    })
}

/// An HTTP status for a response: an integer (or numeric string) from 100 to 599.
pub(crate) fn response_status(value: &Value) -> Result<u16, String> {
    let number = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => Some(string_to_number(text)),
        _ => None,
    };
    match number {
        Some(n) if n.fract() == 0.0 && (100.0..=599.0).contains(&n) => Ok(n as u16),
        _ => Err(format!(
            "`status` must be an HTTP status from 100 to 599, got {value}"
        )),
    }
}

/// Response headers: an object of strings, or a list of `[name, value]` pairs.
pub(crate) fn response_headers(value: &Value) -> Result<Vec<(String, String)>, String> {
    let invalid = || {
        format!(
            "`headers` must be an object of strings or a list of [name, value] pairs, got {value}"
        )
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => map
            .iter()
            .map(|(name, value)| match value {
                Value::String(text) => Ok((name.clone(), text.clone())),
                _ => Err(invalid()),
            })
            .collect(),
        Value::Array(pairs) => pairs
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(name), Value::String(value)]) => {
                    Ok((name.clone(), value.clone()))
                }
                _ => Err(invalid()),
            })
            .collect(),
        _ => Err(invalid()),
    }
}
