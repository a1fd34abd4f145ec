//! The definition format of declarative integrations: serde types that YAML and JSON
//! both parse into (YAML is read into a JSON value first, so the two cannot drift).
//! `input` holds the input language and conditions; `parse` the readers of both
//! syntaxes, their depth limits and the parse errors, which carry the path of the
//! offending field in the file.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

mod input;
mod parse;

pub use input::{Complex, Condition, Input};
pub(crate) use parse::yaml_value;
pub use parse::{Format, not_utf8};

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
    /// What the integration does, for people reading it.
    pub description: Option<String>,
    /// The components the flows use, by component key, each pinned to one version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentPin>,
    /// Config variables, shared by every flow of the integration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_vars: Vec<ConfigVar>,
    /// The flows of the integration.
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
    /// The sha256 of the component's bytes (hex), filled in at publish time; when set, only that build matches.
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
    /// What kind of value the variable holds (default `string`).
    pub data_type: ConfigVarType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The value used when the instance sets none.
    pub default_value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// What the variable is for, for the person configuring an instance.
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The label the configuration wizard shows (default: the key).
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// For a `connection` variable: the connection type of a pinned component that the
    /// instance's connection under this key is of.
    pub connection: Option<ConnectionTypeRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The data source of a pinned component that lists the values a customer picks
    /// from (a `picklist` variable's dropdown); it runs with the instance's connections.
    pub data_source: Option<DataSourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// For a `picklist` variable without a data source: the values to pick from.
    pub picklist: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    /// A secret (a webhook signing secret): the configuration wizard never shows its
    /// value back.
    pub secret: bool,
}

/// A connection type a component declares (its manifest's `connections[].key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionTypeRef {
    /// The pinned component's key.
    pub component: String,
    /// The connection type's key in its manifest.
    pub key: String,
}

/// A data source a component declares (its manifest's `dataSources` key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataSourceRef {
    /// The pinned component's key.
    pub component: String,
    /// The data source's key in its manifest.
    pub key: String,
}

/// The data type of a config variable (seed §3.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConfigVarType {
    #[default]
    /// Text.
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A calendar date.
    Date,
    /// A date and time.
    Timestamp,
    /// One value out of a fixed list.
    Picklist,
    /// Source code or a snippet, kept as text.
    Code,
    /// Any JSON value.
    Json,
    /// Credentials of a connection to an outside service.
    Connection,
    /// A schedule: a cron expression, optionally with a time zone.
    Schedule,
    /// A selection of objects of an outside system.
    ObjectSelection,
    /// A mapping of fields between objects of two systems.
    ObjectFieldMap,
    /// A value entered through a JSON form.
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
    /// Display name of the flow.
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// What the flow does, for people reading it.
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
    /// Key of the flow component in the integration's `components`.
    pub component: String,
}

/// One step. Exactly one of `action`, `code`, `branchOnValue`, `branchOnExpression`,
/// `loopOverItems`, `loopNTimes`, `breakLoop`, `stopExecution` and `invokeFlow` is
/// set; the validator reports anything else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// Stable reference key; derived from `name` (camelCase) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Display name of the step; its key is derived from it when `key` is absent.
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// What the step does, for people reading it.
    pub description: Option<String>,
    /// `component.action`, the component pinned in `components`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// An inline JavaScript function, `(context, stepResults) => result` (it may be
    /// `async`), run by the host's code engine under the step's limits. `stepResults`
    /// holds `{results}` of every step before it (`stepResults.trigger.results.body`)
    /// and `{currentItem, index}` of the loops around it; a returned `{data}` is the
    /// step's result, with the state scopes returned beside it written
    /// (`{data, instanceState: {cursor: 3}}`); anything else returned is the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Inputs of an action step, by input name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Input>,
    /// What to do when an action step fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_config: Option<ErrorConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Runs the branch whose value matches an input.
    pub branch_on_value: Option<BranchOnValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Runs the first branch whose condition holds.
    pub branch_on_expression: Option<BranchOnExpression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Runs steps once per item of a list.
    pub loop_over_items: Option<LoopOverItems>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Runs steps a number of times.
    pub loop_n_times: Option<LoopNTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Ends the innermost enclosing loop.
    pub break_loop: Option<BreakLoop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Ends the execution successfully, with a response.
    pub stop_execution: Option<StopExecution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Runs another flow of the instance as a child execution.
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
    /// Whether a failure fails the flow, is ignored or is retried (default `fail`).
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
    /// The value the branches' values are compared with.
    pub value: Input,
    /// The branches, tried in order.
    pub branches: Vec<ValueBranch>,
    #[serde(default, rename = "else", skip_serializing_if = "Vec::is_empty")]
    /// Steps run when no branch matches (`else` in the file).
    pub else_steps: Vec<Step>,
}

/// One branch of a [`BranchOnValue`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueBranch {
    /// Name of the branch, as the step's `branch` reports it.
    pub name: String,
    /// The value that selects this branch.
    pub value: Input,
    #[serde(default)]
    /// Steps run when this branch is taken.
    pub steps: Vec<Step>,
}

/// Branch on expression: branches are tried in order, the first whose condition is
/// true runs, else `else`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BranchOnExpression {
    /// The branches, tried in order.
    pub branches: Vec<ExpressionBranch>,
    #[serde(default, rename = "else", skip_serializing_if = "Vec::is_empty")]
    /// Steps run when no condition holds (`else` in the file).
    pub else_steps: Vec<Step>,
}

/// One branch of a [`BranchOnExpression`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpressionBranch {
    /// Name of the branch, as the step's `branch` reports it.
    pub name: String,
    /// The condition that selects this branch.
    pub condition: Condition,
    #[serde(default)]
    /// Steps run when this branch is taken.
    pub steps: Vec<Step>,
}

/// Loop over the items of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoopOverItems {
    /// The list to iterate over.
    pub items: Input,
    /// Steps run for each item.
    pub steps: Vec<Step>,
}

/// Loop a number of times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoopNTimes {
    /// How many iterations to run.
    pub count: Input,
    /// Steps run on each iteration.
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
    /// The response's content type.
    pub content_type: Option<Input>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The response body.
    pub body: Option<Input>,
}

/// Reads `stopExecution.headers`: an input (`{type, value}`), a bare object of header
/// names to inputs (a `complex` object), or a bare list of `[name, value]` pairs (a
/// literal), as `docs/flows.md` shows them.
fn headers_input<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Input>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    let input = match &value {
        Value::Object(map) if !map.contains_key("type") => Input::object_from_json(map, ""),
        Value::Array(_) => Ok(Input::Value(value.clone())),
        _ => Input::from_json(&value),
    };
    input.map(Some).map_err(D::Error::custom)
}
