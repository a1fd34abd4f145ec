//! The definition format of declarative integrations: serde types that YAML and JSON
//! both parse into (YAML is read into a JSON value first, so the two cannot drift),
//! and the parse errors, which carry the path of the offending field in the file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::validate::{InvalidDefinition, ValidationError};

/// The only `definitionVersion` this engine reads.
pub const DEFINITION_VERSION: u32 = 1;

/// Deepest nesting of steps: a top-level step is level 1, a step in its branch or
/// loop level 2, and so on. The same in YAML and JSON; a deeper step is refused with
/// its path. It bounds the recursion of validation and execution over the step tree.
pub const MAX_STEP_DEPTH: usize = 64;

/// Deepest nesting of lists and objects in a definition document, in YAML and JSON
/// alike: room for [`MAX_STEP_DEPTH`] levels of steps (five levels each for a branch)
/// with literal values inside; it bounds the parsers' recursion.
pub const MAX_DOCUMENT_DEPTH: usize = 512;

/// The stack of the thread a definition is parsed on: enough for
/// [`MAX_DOCUMENT_DEPTH`] levels in a debug build. Only the pages a parse touches are
/// ever committed.
pub const PARSE_STACK_BYTES: usize = 64 << 20;

/// An integration: pinned components, config variables and flows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Definition {
    /// Schema version of the document; must be [`DEFINITION_VERSION`].
    pub definition_version: u32,
    /// Display name of the integration.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The components the flows use, by component key, each pinned to one version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentPin>,
    /// Config variables, shared by every flow of the integration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_vars: Vec<ConfigVar>,
    pub flows: Vec<Flow>,
}

/// A component version an integration uses. `hash` (the sha256 of the component's
/// bytes) is filled in at publish time, so a published definition names exactly one
/// build even if the version is uploaded again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentPin {
    /// The version the component's manifest declares. An integer in the file is read
    /// as its decimal string (`version: 2` is `version: "2"`): a host's registry numbers
    /// uploads, and a pin may name such a number (see `docs/flows.md`).
    #[serde(deserialize_with = "string_or_integer")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// Reads a string, or a non-negative integer as its decimal string.
fn string_or_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct Visitor;

    impl serde::de::Visitor<'_> for Visitor {
        type Value = String;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a version string or a non-negative integer")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<String, E> {
            Ok(text.to_string())
        }

        fn visit_string<E: serde::de::Error>(self, text: String) -> Result<String, E> {
            Ok(text)
        }

        fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<String, E> {
            Ok(number.to_string())
        }

        fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<String, E> {
            u64::try_from(number)
                .map(|number| number.to_string())
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(number), &self))
        }
    }

    deserializer.deserialize_any(Visitor)
}

/// A config variable: its value is set per instance (the `config` capability); the
/// default applies when the instance sets none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigVar {
    /// The reference key: letters, digits, spaces, `-` and `_`.
    pub key: String,
    #[serde(default)]
    pub data_type: ConfigVarType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The data type of a config variable (seed §3.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConfigVarType {
    #[default]
    String,
    Number,
    Boolean,
    Date,
    Timestamp,
    Picklist,
    Code,
    Json,
    Connection,
    Schedule,
    ObjectSelection,
    ObjectFieldMap,
    JsonForm,
}

/// One flow: a trigger followed by steps, or a code-native flow component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Flow {
    /// Stable key of the flow; derived from `name` (camelCase) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A component trigger; absent means the built-in webhook trigger, which passes
    /// the request through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// The steps of a declarative flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// A code-native flow instead of steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeFlow>,
    /// Runs when an instance is deployed or removed, instead of from a webhook (a
    /// management flow: it has no webhook URL and its trigger receives `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<FlowEvent>,
    /// Webhook callers wait for the flow's response (within the server's deadline)
    /// instead of getting an execution id at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synchronous: bool,
    /// Also runs on a schedule (it keeps its webhook URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// A scheduled run is skipped (recorded as `skipped`) while an earlier execution
    /// of the same instance and flow is still queued or running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub singleton: bool,
    /// Retries of a failed asynchronous execution, as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<FlowRetry>,
    /// FIFO: one execution at a time per instance, in arrival order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<FlowQueue>,
    /// Seconds an execution may run, every step and retry wait included (default:
    /// the server's, 15 minutes for asynchronous and 30 seconds for synchronous runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_seconds: Option<u64>,
}

/// Most retries of an execution (`retry.attempts`).
pub const MAX_FLOW_RETRIES: u32 = 10;
/// Longest wait before a retry, however many times it doubled: 24 hours.
pub const MAX_FLOW_RETRY_DELAY_MINUTES: u64 = 24 * 60;

/// How a failed asynchronous execution is run again (seed: execution retry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowRetry {
    /// Retries after the first run, 1 to 10.
    pub attempts: u32,
    /// Minutes before the first retry (0 to 1440).
    #[serde(default)]
    pub delay_minutes: u64,
    /// Double the delay before each further retry (capped at 24 hours).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exponential: bool,
    /// Where the trigger request carries a unique request id (`body.<path>`,
    /// `headers.<name>` or `query.<name>`): a newer request with the same id cancels
    /// the pending retries of older ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_request_id: Option<String>,
}

/// FIFO delivery of a flow's executions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowQueue {
    /// One execution at a time per instance, in arrival order; a retrying head
    /// blocks the ones behind it.
    pub fifo: bool,
    /// Where the trigger request carries a dedupe id (`body.<path>`,
    /// `headers.<name>` or `query.<name>`): a request whose id was seen in the last
    /// 10 minutes is not run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_id: Option<String>,
}

/// When a scheduled flow runs: `cron` (with an optional `timezone`) the same for every
/// instance, or `configVar`, a config variable of data type `schedule` whose value each
/// instance sets. One struct rather than an untagged enum, so a mistake is reported on
/// the field that holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// 5 fields (`minute hour day-of-month month day-of-week`), or 6 with seconds first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA time zone of `cron` (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Key of a config variable of data type `schedule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_var: Option<String>,
}

/// The instance lifecycle event a management flow runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FlowEvent {
    /// After the instance's deploy hooks, on every deploy (so it must be idempotent).
    InstanceDeploy,
    /// Before the instance is removed (after its remove hooks).
    InstanceRemove,
}

/// A trigger of a component (for example one that verifies an HMAC signature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Trigger {
    /// Component key, as pinned in `components`.
    pub component: String,
    /// Trigger key in the component's manifest.
    pub trigger: String,
    /// Static inputs: `value`, `configVar`, or `complex` of those.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Input>,
}

/// A code-native flow: a component of world `flow`, pinned in `components`. Its
/// `invoke` calls may name any other pinned component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeFlow {
    pub component: String,
}

/// One step. Exactly one of `action`, `branchOnValue`, `branchOnExpression`,
/// `loopOverItems`, `loopNTimes`, `breakLoop` and `stopExecution` is set; the
/// validator reports anything else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// Stable reference key; derived from `name` (camelCase) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `component.action`, the component pinned in `components`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Inputs of an action step, by input name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Input>,
    /// What to do when an action step fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_config: Option<ErrorConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_on_value: Option<BranchOnValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_on_expression: Option<BranchOnExpression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_over_items: Option<LoopOverItems>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_n_times: Option<LoopNTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_loop: Option<BreakLoop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_execution: Option<StopExecution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoke_flow: Option<InvokeFlow>,
}

impl Step {
    /// An action step calling `action` (`component.action`).
    pub fn action(key: impl Into<String>, action: impl Into<String>) -> Self {
        Step {
            key: Some(key.into()),
            action: Some(action.into()),
            ..Step::default()
        }
    }

    /// Adds an input (builder style).
    pub fn input(mut self, name: impl Into<String>, input: Input) -> Self {
        self.inputs.insert(name.into(), input);
        self
    }
}

/// Step-level error handling (seed §1.9, §3.5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorConfig {
    #[serde(default)]
    pub error_handler_type: ErrorHandler,
    /// Retries after the first attempt, 0 to 5 (`retry` only; default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Seconds before the first retry, 0 to 60 (`retry` only; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<u32>,
    /// Double the delay before each further retry (`retry` only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uses_exponential_backoff: bool,
    /// Continue, with the error as the step's result, when the last retry fails.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_final_error: bool,
}

/// How a failing step is handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorHandler {
    /// Stop the flow; the execution fails with this step.
    #[default]
    Fail,
    /// Continue; the step's result is `{"error": {...}}`.
    Ignore,
    /// Run the step again, within `maxAttempts` and `delaySeconds`.
    Retry,
}

/// Branch on value: the first branch whose value equals `value` runs, else `else`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchOnValue {
    pub value: Input,
    pub branches: Vec<ValueBranch>,
    #[serde(default, rename = "else", skip_serializing_if = "Vec::is_empty")]
    pub else_steps: Vec<Step>,
}

/// One branch of a [`BranchOnValue`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueBranch {
    pub name: String,
    pub value: Input,
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// Branch on expression: branches are tried in order, the first whose condition is
/// true runs, else `else`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchOnExpression {
    pub branches: Vec<ExpressionBranch>,
    #[serde(default, rename = "else", skip_serializing_if = "Vec::is_empty")]
    pub else_steps: Vec<Step>,
}

/// One branch of a [`BranchOnExpression`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpressionBranch {
    pub name: String,
    pub condition: Condition,
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// Loop over the items of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoopOverItems {
    pub items: Input,
    pub steps: Vec<Step>,
}

/// Loop a number of times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoopNTimes {
    pub count: Input,
    pub steps: Vec<Step>,
}

/// Runs another flow of the same instance as a child execution: synchronously (the
/// step's result is the child's response) or queued (the result is
/// `{"executionId": ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvokeFlow {
    /// Key of the flow to run, in this integration.
    pub flow: String,
    /// The child's trigger payload, sent as its JSON request body (`{}` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Input>,
    /// Wait for the child's response (the default), or queue it and go on.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub synchronous: bool,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// Ends the innermost enclosing loop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakLoop {}

/// Ends the execution successfully with a response for a synchronous caller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopExecution {
    /// HTTP status, 100 to 599 (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Input>,
    /// An object of header names to values, or a list of `[name, value]` pairs. In
    /// the file, a bare object (each value an input) or a bare list of pairs, or any
    /// input that yields one; an object with a `type` field is read as an input.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "headers_input"
    )]
    pub headers: Option<Input>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<Input>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Input>,
}

/// Reads `stopExecution.headers`: an input (`{type, value}`), a bare object of header
/// names to inputs (a `complex` object), or a bare list of `[name, value]` pairs (a
/// literal), as `docs/flows.md` shows them.
fn headers_input<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Input>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    let input = match &value {
        Value::Object(map) if !map.contains_key("type") => map
            .iter()
            .map(|(name, item)| {
                Input::from_json(item)
                    .map(|input| (name.clone(), input))
                    .map_err(|err| format!("{name}: {err}"))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(|entries| Input::Complex(Complex::Object(entries))),
        Value::Array(_) => Ok(Input::Value(value.clone())),
        _ => Input::from_json(&value),
    };
    input.map(Some).map_err(D::Error::custom)
}

/// An input: where a value comes from. In the file it is `{type, value}`, or a bare
/// scalar (string, number, boolean, null) as a shorthand for `{type: value, value: X}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A literal JSON value.
    Value(Value),
    /// A step result or loop variable: `createTicket.results.id`,
    /// `trigger.results.body.issue.number`, `eachItem.currentItem.name`.
    Reference(String),
    /// The key of a config variable.
    ConfigVar(String),
    /// Text with `{{reference}}` and `{{#config var}}` interpolations.
    Template(String),
    /// A list or an object of inputs.
    Complex(Complex),
}

/// The value of a `complex` input.
#[derive(Debug, Clone, PartialEq)]
pub enum Complex {
    List(Vec<Input>),
    Object(BTreeMap<String, Input>),
}

impl Input {
    /// A literal value.
    pub fn value(value: impl Into<Value>) -> Self {
        Input::Value(value.into())
    }

    /// A reference (`step.results.path`).
    pub fn reference(path: impl Into<String>) -> Self {
        Input::Reference(path.into())
    }

    /// A template (`"gh-{{trigger.results.body.n}}"`).
    pub fn template(text: impl Into<String>) -> Self {
        Input::Template(text.into())
    }

    /// A config variable.
    pub fn config_var(key: impl Into<String>) -> Self {
        Input::ConfigVar(key.into())
    }

    /// The input as the file writes it, `{type, value}`.
    pub fn to_json(&self) -> Value {
        let (kind, value) = match self {
            Input::Value(value) => ("value", value.clone()),
            Input::Reference(text) => ("reference", Value::String(text.clone())),
            Input::ConfigVar(text) => ("configVar", Value::String(text.clone())),
            Input::Template(text) => ("template", Value::String(text.clone())),
            Input::Complex(Complex::List(items)) => (
                "complex",
                Value::Array(items.iter().map(Input::to_json).collect()),
            ),
            Input::Complex(Complex::Object(entries)) => (
                "complex",
                Value::Object(
                    entries
                        .iter()
                        .map(|(name, input)| (name.clone(), input.to_json()))
                        .collect(),
                ),
            ),
        };
        let mut object = Map::new();
        object.insert("type".into(), Value::String(kind.into()));
        object.insert("value".into(), value);
        Value::Object(object)
    }

    /// Reads an input from its JSON form. Errors name the sub-path inside the input
    /// (`value[1].type`) when the problem is nested.
    pub fn from_json(value: &Value) -> Result<Input, String> {
        match value {
            Value::Object(object) => {
                let Some(kind) = object.get("type") else {
                    return Err(
                        "an input is `{type, value}` or a plain scalar; this object has \
                         no `type`"
                            .into(),
                    );
                };
                if let Some(extra) = object.keys().find(|key| *key != "type" && *key != "value") {
                    return Err(format!(
                        "unknown field `{extra}` in an input (expected `type` and `value`)"
                    ));
                }
                let kind = kind.as_str().ok_or("`type` of an input must be a string")?;
                let value = object.get("value");
                let text = |what: &str| -> Result<String, String> {
                    match value {
                        Some(Value::String(text)) => Ok(text.clone()),
                        Some(_) => Err(format!("the value of a `{what}` input must be a string")),
                        None => Err(format!("a `{what}` input needs a `value`")),
                    }
                };
                match kind {
                    "value" => Ok(Input::Value(value.cloned().unwrap_or(Value::Null))),
                    "reference" => text("reference").map(Input::Reference),
                    "configVar" => text("configVar").map(Input::ConfigVar),
                    "template" => text("template").map(Input::Template),
                    "complex" => match value {
                        Some(Value::Array(items)) => items
                            .iter()
                            .enumerate()
                            .map(|(index, item)| {
                                Input::from_json(item)
                                    .map_err(|err| format!("value[{index}]: {err}"))
                            })
                            .collect::<Result<Vec<_>, _>>()
                            .map(|items| Input::Complex(Complex::List(items))),
                        Some(Value::Object(entries)) => entries
                            .iter()
                            .map(|(name, item)| {
                                Input::from_json(item)
                                    .map(|input| (name.clone(), input))
                                    .map_err(|err| format!("value.{name}: {err}"))
                            })
                            .collect::<Result<BTreeMap<_, _>, _>>()
                            .map(|entries| Input::Complex(Complex::Object(entries))),
                        _ => Err(
                            "the value of a `complex` input must be a list or an object \
                             of inputs"
                                .into(),
                        ),
                    },
                    other => Err(format!(
                        "unknown input type `{other}` (expected value, reference, configVar, \
                         template or complex)"
                    )),
                }
            }
            Value::Array(_) => Err("a list must be written as `{type: complex, value: [...]}` \
                 (or `{type: value, value: [...]}` for a literal)"
                .into()),
            scalar => Ok(Input::Value(scalar.clone())),
        }
    }
}

impl Serialize for Input {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Input::from_json(&value).map_err(D::Error::custom)
    }
}

/// A branch condition, in the prefix notation of Prismatic's YAML:
/// `[operator, left, right]` for a comparison (`[operator, term]` for a unary one) and
/// `[and | or, condition, condition, ...]` for groups. Terms are inputs. Checked when
/// the definition is validated, so a malformed condition is reported with its path.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition(pub Value);

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Condition)
    }
}

/// The syntax of a definition file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// JSON for a `.json` file, YAML otherwise.
    pub fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|ext| ext.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

impl Definition {
    /// Parses a definition; YAML and JSON produce the same types. Errors carry the
    /// path of the field (and, for syntax errors, the line and column).
    ///
    /// The parsers recurse once per level of nesting, and the YAML parser's frames are
    /// large (tens of KiB each in a debug build), so a document nested as deep as the
    /// limits allow would overflow a 2 MiB thread stack (a test's, or a tokio
    /// worker's). The parse runs on a thread of its own with [`PARSE_STACK_BYTES`].
    pub fn parse(text: &str, format: Format) -> Result<Definition, InvalidDefinition> {
        let failed = |what: String| {
            InvalidDefinition::single(ValidationError::at(
                "",
                format!("internal error: the definition parser {what}"),
            ))
        };
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("sluice-definition-parse".into())
                .stack_size(PARSE_STACK_BYTES)
                .spawn_scoped(scope, || Self::parse_on_this_thread(text, format))
                .map_err(|err| failed(format!("could not start: {err}")))?
                .join()
                .map_err(|_| failed("panicked".into()))?
        })
    }

    fn parse_on_this_thread(text: &str, format: Format) -> Result<Definition, InvalidDefinition> {
        let value = match format {
            Format::Json => json_value(text).map_err(InvalidDefinition::single)?,
            Format::Yaml => yaml_value(text).map_err(|err| {
                let location = err.location();
                InvalidDefinition::single(ValidationError {
                    path: String::new(),
                    message: yaml_message(&err),
                    line: location.map(|at| at.line()),
                    column: location.map(|at| at.column()),
                })
            })?,
        };
        Self::from_value(value)
    }

    /// Reads and parses a definition file: JSON for `.json`, YAML otherwise.
    pub fn from_path(path: &Path) -> Result<Definition, InvalidDefinition> {
        let bytes = std::fs::read(path).map_err(|err| {
            InvalidDefinition::single(ValidationError::at(
                "",
                format!("cannot read {}: {err}", path.display()),
            ))
        })?;
        let text = String::from_utf8(bytes).map_err(|err| {
            InvalidDefinition::single(ValidationError::at(
                "",
                not_utf8(&path.display().to_string(), &err),
            ))
        })?;
        Self::parse(&text, Format::of_path(path))
    }

    /// Parses a YAML definition.
    pub fn from_yaml(text: &str) -> Result<Definition, InvalidDefinition> {
        Self::parse(text, Format::Yaml)
    }

    /// Parses a JSON definition.
    pub fn from_json(text: &str) -> Result<Definition, InvalidDefinition> {
        Self::parse(text, Format::Json)
    }

    /// Reads a definition from a JSON value (what both syntaxes parse into).
    pub fn from_value(value: Value) -> Result<Definition, InvalidDefinition> {
        if !value.is_object() {
            return Err(InvalidDefinition::single(ValidationError::at(
                "",
                "a definition is an object with `definitionVersion`, `name` and `flows`",
            )));
        }
        // Before the typed pass, whose recursion follows the steps.
        check_step_depth(&value).map_err(InvalidDefinition::single)?;
        serde_path_to_error::deserialize::<_, Definition>(value).map_err(|err| {
            let path = err.path().to_string();
            let path = if path == "." { String::new() } else { path };
            InvalidDefinition::single(ValidationError::at(
                path,
                plain_message(&err.into_inner().to_string()),
            ))
        })
    }

    /// The definition as JSON.
    pub fn to_json_value(&self) -> Value {
        // Serializing these types cannot fail: keys are strings, values JSON.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Reads YAML into a JSON value. Only YAML 1.2 booleans are booleans: `yes`, `no`,
/// `on` and `off` stay strings (a branch named `Yes` must not become `true`). Lists
/// and objects may nest [`MAX_DOCUMENT_DEPTH`] deep, block or flow style.
pub(crate) fn yaml_value(text: &str) -> Result<Value, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(
        text,
        serde_saphyr::options! {
            strict_booleans: true,
            budget: serde_saphyr::budget! {
                max_depth: MAX_DOCUMENT_DEPTH,
                flow_nesting_limit: MAX_DOCUMENT_DEPTH,
            },
        },
    )
}

/// The message of a YAML error, in the terms of the document rather than of the
/// parser's options.
fn yaml_message(err: &serde_saphyr::Error) -> String {
    use serde_saphyr::budget::BudgetBreach;
    match err.without_snippet() {
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        } => too_deep(),
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => match key {
            Some(key) => format!("not valid YAML: duplicate key `{key}`"),
            None => "not valid YAML: duplicate key".to_string(),
        },
        other => format!("not valid YAML: {}", first_line(&other.to_string())),
    }
}

fn too_deep() -> String {
    format!("the document nests lists and objects more than {MAX_DOCUMENT_DEPTH} levels deep")
}

/// Why text that should be a definition is not UTF-8, naming where.
pub fn not_utf8(name: &str, err: &std::string::FromUtf8Error) -> String {
    format!(
        "{name} is not UTF-8 text (invalid bytes at offset {})",
        err.utf8_error().valid_up_to()
    )
}

/// Reads JSON into a value, lists and objects nested at most [`MAX_DOCUMENT_DEPTH`]
/// deep (serde_json's own limit, 128, would refuse 25 levels of branches).
fn json_value(text: &str) -> Result<Value, ValidationError> {
    if let Some((line, column)) = crate::types::json_depth_exceeded(text, MAX_DOCUMENT_DEPTH) {
        return Err(ValidationError {
            path: String::new(),
            message: too_deep(),
            line: Some(line),
            column: Some(column),
        });
    }
    let syntax = |err: serde_json::Error| ValidationError {
        path: String::new(),
        message: format!("not valid JSON: {err}"),
        line: Some(err.line() as u64),
        column: Some(err.column() as u64),
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // Bounded above: the parser cannot go deeper than the scan found.
    deserializer.disable_recursion_limit();
    let value = Value::deserialize(&mut deserializer).map_err(syntax)?;
    deserializer.end().map_err(syntax)?;
    Ok(value)
}

/// Refuses steps nested deeper than [`MAX_STEP_DEPTH`], naming the first step past
/// the limit. Reads the untyped document, so a malformed one is left to the typed
/// pass to report.
fn check_step_depth(document: &Value) -> Result<(), ValidationError> {
    let Some(flows) = document.get("flows").and_then(Value::as_array) else {
        return Ok(());
    };
    for (index, flow) in flows.iter().enumerate() {
        if let Some(steps) = flow.get("steps") {
            step_list_depth(steps, &format!("flows[{index}].steps"), 1)?;
        }
    }
    Ok(())
}

fn step_list_depth(steps: &Value, path: &str, level: usize) -> Result<(), ValidationError> {
    let Some(steps) = steps.as_array() else {
        return Ok(());
    };
    for (index, step) in steps.iter().enumerate() {
        let step_path = format!("{path}[{index}]");
        if level > MAX_STEP_DEPTH {
            return Err(ValidationError::at(
                step_path,
                format!(
                    "steps nest {level} levels deep here; at most {MAX_STEP_DEPTH} levels of \
                     steps (branches and loops inside one another) are supported"
                ),
            ));
        }
        for kind in ["branchOnValue", "branchOnExpression"] {
            let Some(branch) = step.get(kind) else {
                continue;
            };
            if let Some(branches) = branch.get("branches").and_then(Value::as_array) {
                for (number, one) in branches.iter().enumerate() {
                    if let Some(inner) = one.get("steps") {
                        let inner_path = format!("{step_path}.{kind}.branches[{number}].steps");
                        step_list_depth(inner, &inner_path, level + 1)?;
                    }
                }
            }
            if let Some(inner) = branch.get("else") {
                step_list_depth(inner, &format!("{step_path}.{kind}.else"), level + 1)?;
            }
        }
        for kind in ["loopOverItems", "loopNTimes"] {
            if let Some(inner) = step.get(kind).and_then(|each| each.get("steps")) {
                step_list_depth(inner, &format!("{step_path}.{kind}.steps"), level + 1)?;
            }
        }
    }
    Ok(())
}

/// A serde message with the Rust type names it may carry (`expected u32`) put in the
/// terms of the document.
fn plain_message(message: &str) -> String {
    let mut text = message.to_string();
    for (rust, plain) in [
        ("u64", format!("a whole number from 0 to {}", u64::MAX)),
        ("u32", format!("a whole number from 0 to {}", u32::MAX)),
        ("u16", format!("a whole number from 0 to {}", u16::MAX)),
        ("usize", format!("a whole number from 0 to {}", u64::MAX)),
        ("i64", "a whole number".to_string()),
    ] {
        text = text.replace(&format!("expected {rust}"), &format!("expected {plain}"));
    }
    text
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_and_json_parse_into_the_same_types() {
        let yaml = r#"
definitionVersion: 1
name: Demo
components:
  hello: {version: "0.1.0"}
configVars:
  - key: Region
    defaultValue: eu
flows:
  - key: main
    steps:
      - key: first
        action: hello.echo
        inputs:
          plain: 5
          ref: {type: reference, value: trigger.results.body.id}
          list: {type: complex, value: [1, {type: configVar, value: Region}]}
"#;
        let from_yaml = Definition::from_yaml(yaml).expect("yaml parses");
        let json_text = serde_json::to_string(&from_yaml.to_json_value()).unwrap();
        let from_json = Definition::from_json(&json_text).expect("json parses");
        assert_eq!(from_yaml, from_json);
        let inputs = &from_yaml.flows[0].steps[0].inputs;
        assert_eq!(inputs["plain"], Input::Value(json!(5)));
        assert_eq!(
            inputs["list"],
            Input::Complex(Complex::List(vec![
                Input::Value(json!(1)),
                Input::ConfigVar("Region".into())
            ]))
        );
    }

    #[test]
    fn type_errors_carry_the_path() {
        let err = Definition::from_json(
            r#"{"definitionVersion": 1, "name": "x", "flows": [{"key": "f", "steps": [{"key": "a", "inputs": {"x": {"type": "nope", "value": 1}}}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.errors[0].path, "flows[0].steps[0].inputs.x");
        assert!(err.errors[0].message.contains("unknown input type `nope`"));
    }

    #[test]
    fn a_pin_version_may_be_an_integer() {
        let text = |version: &str| {
            format!(
                r#"{{"definitionVersion": 1, "name": "x", "components": {{"hello": {{"version": {version}}}}},
                    "flows": [{{"key": "f", "steps": [{{"key": "a", "action": "hello.echo"}}]}}]}}"#
            )
        };
        let from_integer = Definition::from_json(&text("2")).unwrap();
        assert_eq!(from_integer.components["hello"].version, "2");
        assert_eq!(
            from_integer,
            Definition::from_json(&text(r#""2""#)).unwrap()
        );
        let yaml = Definition::from_yaml(
            "definitionVersion: 1\nname: x\ncomponents: {hello: {version: 3}}\nflows: [{key: f, code: {component: hello}}]\n",
        )
        .unwrap();
        assert_eq!(yaml.components["hello"].version, "3");
        for bad in ["-1", "1.5", "true", "null"] {
            let err = Definition::from_json(&text(bad)).unwrap_err();
            assert_eq!(err.errors[0].path, "components.hello.version", "{bad}");
        }
    }

    #[test]
    fn only_yaml_1_2_booleans_are_booleans() {
        assert_eq!(
            yaml_value("[yes, No, on, true, False]").unwrap(),
            json!(["yes", "No", "on", true, false])
        );
    }

    #[test]
    fn yaml_syntax_errors_carry_line_and_column() {
        let err = Definition::from_yaml("name: x\nflows: [\n  - a: b\n").unwrap_err();
        assert!(err.errors[0].line.is_some(), "{err:?}");
        assert!(err.errors[0].message.starts_with("not valid YAML"));
    }
}
