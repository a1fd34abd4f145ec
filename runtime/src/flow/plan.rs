//! The executable plan a validated definition compiles to: every reference resolved to
//! a slot number, every constant input serialized once, every component resolved to a
//! loaded component, so an execution never re-reads the definition.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use super::definition::FlowEvent;

use serde_json::Value;

use super::catalog::{CatalogEntry, InputSchema};
use super::definition::ErrorHandler;
use super::expression::Expr;
use super::reference::{RefField, Segment};
use crate::ContentHash;

/// A validated integration, ready to run. Cloning is cheap.
#[derive(Clone)]
pub struct Plan {
    pub(crate) inner: Arc<IntegrationPlan>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("name", &self.inner.name)
            .field("flows", &self.flow_keys())
            .finish()
    }
}

impl Plan {
    /// The integration's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The keys of the flows, in definition order.
    pub fn flow_keys(&self) -> Vec<&str> {
        self.inner.flows.iter().map(|flow| &*flow.key).collect()
    }

    /// Whether the plan has a flow with this key.
    pub fn has_flow(&self, key: &str) -> bool {
        self.inner.flow(key).is_some()
    }

    /// The lifecycle event flow `key` runs on (`None`: it runs from its webhook).
    pub fn flow_event(&self, key: &str) -> Option<FlowEvent> {
        self.inner.flow(key).and_then(|flow| flow.on)
    }

    /// How the host's queue treats flow `key`'s executions: singleton, retries, FIFO
    /// and dedupe, time limit.
    pub fn flow_policy(&self, key: &str) -> Option<&FlowPolicy> {
        self.inner.flow(key).map(|flow| &flow.policy)
    }

    /// Whether flow `key` answers its webhooks synchronously by default.
    pub fn flow_synchronous(&self, key: &str) -> bool {
        self.inner.flow(key).is_some_and(|flow| flow.synchronous)
    }

    /// Keys of the flows that run from webhooks (not on lifecycle events).
    pub fn webhook_flow_keys(&self) -> Vec<&str> {
        self.inner
            .flows
            .iter()
            .filter(|flow| flow.on.is_none())
            .map(|flow| &*flow.key)
            .collect()
    }

    /// Keys of the flows that run on `event`, in definition order.
    pub fn event_flow_keys(&self, event: FlowEvent) -> Vec<&str> {
        self.inner
            .flows
            .iter()
            .filter(|flow| flow.on == Some(event))
            .map(|flow| &*flow.key)
            .collect()
    }

    /// The integration's code steps, in definition order.
    pub fn code_steps(&self) -> &[CodeStepSource] {
        &self.inner.code_steps
    }

    /// The component each pinned key resolved to: version and content hash. A
    /// published definition records these hashes.
    pub fn pins(&self) -> BTreeMap<String, (String, ContentHash)> {
        self.inner
            .components
            .iter()
            .map(|(key, entry)| {
                (
                    key.clone(),
                    (entry.manifest.version.clone(), entry.component.hash()),
                )
            })
            .collect()
    }
}

pub(crate) struct IntegrationPlan {
    pub name: String,
    pub components: BTreeMap<String, CatalogEntry>,
    pub config_vars: Vec<ConfigVarPlan>,
    pub flows: Vec<FlowPlan>,
    pub code_steps: Vec<CodeStepSource>,
}

/// A code step's source and where it is in the definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeStepSource {
    /// `flows[0].steps[2].code`.
    pub path: String,
    /// The JavaScript function.
    pub code: String,
}

impl IntegrationPlan {
    pub fn flow(&self, key: &str) -> Option<&FlowPlan> {
        self.flows.iter().find(|flow| &*flow.key == key)
    }
}

pub(crate) struct ConfigVarPlan {
    pub key: String,
    pub default: Option<Value>,
}

/// What a flow's definition asks of the queue that runs it (the engine itself only
/// enforces the time limit, through [`RunEnv::deadline`](super::RunEnv::deadline)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowPolicy {
    /// Skip a scheduled run while an earlier one is unfinished.
    pub singleton: bool,
    /// Retries of a failed asynchronous execution.
    pub retry: Option<super::definition::FlowRetry>,
    /// One execution at a time per instance, in arrival order.
    pub fifo: bool,
    /// Where the request carries the dedupe id (FIFO flows).
    pub dedupe_id: Option<String>,
    /// The flow's own time limit, if it sets one.
    pub time_limit: Option<std::time::Duration>,
}

pub(crate) struct FlowPlan {
    pub key: Arc<str>,
    pub policy: FlowPolicy,
    pub on: Option<FlowEvent>,
    pub synchronous: bool,
    /// The flow's schedule, checked (see `schedule.rs` for the accessors).
    pub schedule: Option<super::schedule::ScheduleSource>,
    pub trigger: TriggerPlan,
    pub body: FlowBody,
    /// Step slots (slot 0 is the trigger).
    pub slots: usize,
}

pub(crate) enum TriggerPlan {
    /// The built-in webhook trigger: the request passes through.
    Webhook,
    Component {
        component_key: Arc<str>,
        entry: CatalogEntry,
        trigger: String,
        inputs: Fields,
    },
}

pub(crate) enum FlowBody {
    Steps(Vec<Node>),
    Code { key: Arc<str>, entry: CatalogEntry },
}

pub(crate) enum Node {
    Action(ActionNode),
    BranchOnValue(BranchOnValueNode),
    BranchOnExpression(BranchOnExpressionNode),
    LoopOverItems(LoopNode),
    LoopNTimes(LoopNode),
    Break { key: Arc<str> },
    Stop(StopNode),
    InvokeFlow(InvokeFlowNode),
}

pub(crate) struct ActionNode {
    pub slot: usize,
    pub key: Arc<str>,
    pub component_key: Arc<str>,
    pub action: String,
    pub entry: CatalogEntry,
    pub inputs: Fields,
    pub schema: InputSchema,
    pub policy: ErrorPolicy,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorPolicy {
    pub handler: ErrorHandler,
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub delay_seconds: u32,
    pub exponential: bool,
    pub ignore_final_error: bool,
}

impl ErrorPolicy {
    /// A step without `errorConfig`: its first error fails the flow.
    pub(crate) const FAIL: ErrorPolicy = ErrorPolicy {
        handler: ErrorHandler::Fail,
        max_retries: 0,
        delay_seconds: 0,
        exponential: false,
        ignore_final_error: false,
    };
}

pub(crate) struct BranchOnValueNode {
    pub slot: usize,
    pub key: Arc<str>,
    pub value: CInput,
    pub branches: Vec<(Arc<str>, CInput, Vec<Node>)>,
    pub else_steps: Vec<Node>,
}

pub(crate) struct BranchOnExpressionNode {
    pub slot: usize,
    pub key: Arc<str>,
    pub branches: Vec<(Arc<str>, Expr<CInput>, Vec<Node>)>,
    pub else_steps: Vec<Node>,
}

pub(crate) struct LoopNode {
    pub slot: usize,
    pub key: Arc<str>,
    /// The items (loop over items) or the count (loop N times).
    pub source: CInput,
    pub body: Vec<Node>,
    /// Slots of the steps inside the body, cleared at the start of each iteration.
    pub body_slots: Range<usize>,
}

pub(crate) struct InvokeFlowNode {
    pub slot: usize,
    pub key: Arc<str>,
    /// The flow to run (a key of this integration, checked at validation).
    pub flow: Arc<str>,
    pub payload: CInput,
    pub synchronous: bool,
    pub policy: ErrorPolicy,
}

pub(crate) struct StopNode {
    pub key: Arc<str>,
    pub status: Option<CInput>,
    pub headers: Option<CInput>,
    pub content_type: Option<CInput>,
    pub body: Option<CInput>,
}

/// A compiled input.
#[derive(Debug, Clone)]
pub(crate) enum CInput {
    /// Known before execution; `text` is its JSON.
    Const {
        value: Value,
        text: String,
    },
    Ref(CRef),
    Config(usize),
    Template(Vec<CPart>),
    List(Vec<CInput>),
    Object(Fields),
}

/// Named inputs: `(name, name as a JSON string with its quotes, input)`.
pub(crate) type Fields = Vec<(String, String, CInput)>;

impl CInput {
    pub fn constant(value: Value) -> CInput {
        let text = value.to_string();
        CInput::Const { value, text }
    }

    pub fn as_const(&self) -> Option<&Value> {
        match self {
            CInput::Const { value, .. } => Some(value),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CRef {
    pub slot: usize,
    pub field: RefField,
    pub path: Vec<Segment>,
}

#[derive(Debug, Clone)]
pub(crate) enum CPart {
    Text(String),
    Ref(CRef),
    Config(usize),
}
