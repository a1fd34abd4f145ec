//! The execution record: what a flow execution did, step by step (status, attempts,
//! times, fuel, peak memory, an input summary, the result, the logs), as serde types
//! whose JSON is the `--json` output of `sluice flow run`. Results over a size cap are
//! kept in a [`ResultStore`] and recorded by reference.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{GuestError, GuestErrorKind, LogRecord, Outcome};

/// One execution of a flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    /// The id of the execution.
    pub execution_id: String,
    /// The integration's name.
    pub integration: String,
    /// The flow's key.
    pub flow: String,
    /// Whether the flow is declarative or code-native.
    pub kind: FlowKind,
    /// Whether the execution succeeded or failed.
    pub status: ExecutionStatus,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// When the execution ended, in milliseconds since the Unix epoch.
    pub ended_at_ms: u64,
    /// How long the execution took, in microseconds.
    pub duration_us: u64,
    /// The step the execution failed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// What a synchronous caller receives: the stop-execution response, the trigger's
    /// response, or the last step's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<FlowResponse>,
    /// The trigger answered the request itself instead of accepting it (a refused
    /// signature, a verification challenge): `response` is its answer and no step
    /// after the trigger ran. A host tells a refusal from a challenge by its status.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trigger_responded: bool,
    /// Steps in the order they ran; the steps of a loop repeat, one per iteration.
    pub steps: Vec<StepRecord>,
    /// Fuel of every sandbox of the execution.
    pub fuel_used: u64,
}

impl ExecutionRecord {
    /// Whether the execution succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == ExecutionStatus::Succeeded
    }

    /// Whether the trigger refused the request: it answered it itself, with a client
    /// or server error status (a bad signature, say), instead of running the flow.
    pub fn trigger_refused(&self) -> bool {
        self.trigger_responded
            && self
                .response
                .as_ref()
                .is_some_and(|response| response.status >= 400)
    }

    /// Whether the trigger accepted the request, so the flow's steps ran (or were
    /// due to): a webhook trigger always does, a component trigger when it returned
    /// `accept`.
    pub fn trigger_accepted(&self) -> bool {
        !self.trigger_responded
            && self.steps.first().is_some_and(|step| {
                step.kind == StepKind::Trigger && step.status == StepStatus::Succeeded
            })
    }

    /// The records of step `key` (several for a step inside a loop).
    pub fn step_runs<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a StepRecord> + 'a {
        self.steps.iter().filter(move |step| step.key == key)
    }

    /// The last record of step `key`.
    pub fn step(&self, key: &str) -> Option<&StepRecord> {
        self.steps.iter().rev().find(|step| step.key == key)
    }
}

/// How the flow is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FlowKind {
    /// Steps in a definition, run by the engine.
    Declarative,
    /// A code-native flow: a component of world `flow`.
    Code,
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExecutionStatus {
    /// The flow ran to its end, or to a `stopExecution` step.
    Succeeded,
    /// The execution ended with an error (see `failed_step`).
    Failed,
}

/// What kind of step a record is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepKind {
    /// The flow's trigger.
    Trigger,
    /// An action step.
    Action,
    /// A `branchOnValue` step.
    BranchOnValue,
    /// A `branchOnExpression` step.
    BranchOnExpression,
    /// A `loopOverItems` step.
    LoopOverItems,
    /// A `loopNTimes` step.
    LoopNTimes,
    /// A `breakLoop` step.
    BreakLoop,
    /// A `stopExecution` step.
    StopExecution,
    /// The `on-execution` call of a code-native flow.
    Code,
    /// An `invoke` call of a code-native flow.
    Invoke,
    /// An `invokeFlow` step, or an `invoke-flow` call of a code-native flow.
    InvokeFlow,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    /// The step did its work.
    Succeeded,
    /// The step failed and stopped the flow.
    Failed,
    /// Failed, and the flow went on (`ignore`, or `retry` with `ignoreFinalError`).
    Ignored,
}

/// One step (one iteration of it, inside a loop).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The step's key (`trigger` for the trigger).
    pub key: String,
    /// What kind of step it is.
    pub kind: StepKind,
    /// The indices of the enclosing loops' iterations, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub iteration: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The key of the component called.
    pub component: Option<String>,
    /// The action (or trigger) called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The flow an `invokeFlow` step (or `invoke-flow` call) ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// The execution that flow call started (its parent is this execution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_execution_id: Option<String>,
    /// How the step ended.
    pub status: StepStatus,
    /// When the step started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// When the step ended, in milliseconds since the Unix epoch.
    pub ended_at_ms: u64,
    /// How long the step took, in microseconds.
    pub duration_us: u64,
    /// Each sandboxed attempt (empty for control steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptRecord>,
    /// Summed over attempts.
    pub fuel_used: u64,
    /// The highest over attempts.
    pub peak_memory_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The start of the step's input.
    pub input: Option<InputSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The step's result.
    pub result: Option<RecordedValue>,
    /// The branch taken (branch steps), or chosen by an action or trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Why the step failed.
    pub error: Option<StepError>,
    /// Log lines the step's sandboxes wrote.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogRecord>,
}

impl StepRecord {
    /// A record of step `key` started at `started_ms` (succeeded until said otherwise),
    /// with nothing else filled in yet.
    pub fn started(key: &str, kind: StepKind, started_ms: u64) -> Self {
        StepRecord {
            key: key.to_string(),
            kind,
            iteration: Vec::new(),
            component: None,
            action: None,
            flow: None,
            child_execution_id: None,
            status: StepStatus::Succeeded,
            started_at_ms: started_ms,
            ended_at_ms: started_ms,
            duration_us: 0,
            attempts: Vec::new(),
            fuel_used: 0,
            peak_memory_bytes: 0,
            input: None,
            result: None,
            branch: None,
            error: None,
            logs: Vec::new(),
        }
    }

    /// The record ended now, `started` being when the step started.
    pub(crate) fn finished(mut self, started: Instant) -> Self {
        self.ended_at_ms = crate::capabilities::log::now_ms();
        self.duration_us = micros(started.elapsed());
        self
    }

    /// The inline result, if the result was small enough to keep in the record.
    pub fn result_value(&self) -> Option<&Value> {
        match &self.result {
            Some(RecordedValue::Inline(value)) => Some(value),
            _ => None,
        }
    }
}

/// A duration as the record writes it, in whole microseconds.
pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// One sandboxed call of a step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The sandbox outcome (`completed`, `guest-error`, `timeout`, ...), or `not-run`.
    pub outcome: String,
    /// The wait before this attempt, in milliseconds.
    pub delay_before_ms: u64,
    /// How long the attempt ran, in microseconds.
    pub duration_us: u64,
    /// Fuel the attempt's sandbox consumed.
    pub fuel_used: u64,
    /// Highest linear memory of the attempt's sandbox, in bytes.
    pub peak_memory_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Why the attempt failed.
    pub error: Option<StepError>,
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepError {
    /// What kind of failure it is.
    pub kind: StepErrorKind,
    /// What went wrong, for a person.
    pub message: String,
    /// For connection errors: the connection's config-variable key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
}

/// The kind of a step error: a guest error kind, a sandbox outcome, or one of the
/// engine's. Serialized as the kebab-case strings records and the API have always
/// carried (`invalid-input`, `out-of-fuel`, `time-limit`, ...), so stored records read
/// back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepErrorKind {
    // The guest's own kinds (`GuestErrorKind`).
    /// The guest refused its input.
    InvalidInput,
    /// A connection was missing, invalid or refused.
    Connection,
    /// A failure that may pass on a retry.
    Retryable,
    /// A failure that no retry will fix.
    Fatal,
    // The sandbox outcomes other than completion and a guest error.
    /// The sandbox ran out of fuel.
    OutOfFuel,
    /// The sandbox exceeded its memory limit.
    MemoryLimit,
    /// The sandbox exceeded its time limit.
    Timeout,
    /// The guest trapped.
    Trap,
    /// The guest's output exceeded its size limit.
    OutputTooLarge,
    /// The guest's output was not what its interface requires.
    InvalidOutput,
    /// The guest wrote more logs than allowed.
    LogLimit,
    /// The guest made more host calls than allowed.
    HostCallLimit,
    // The engine's.
    /// An input could not be built (a config variable without value, loop items that
    /// are not a list, ...).
    Input,
    /// A branch condition could not be evaluated.
    Expression,
    /// The sandbox could not start, or the host could not do its part.
    Host,
    /// Every sandbox slot stayed taken for the runtime's bounded wait.
    Busy,
    /// More than the cap on step runs.
    Limit,
    /// The flow's time limit passed before the step could start.
    TimeLimit,
}

impl StepErrorKind {
    /// Every kind, for tests and documentation.
    pub const ALL: [StepErrorKind; 18] = [
        StepErrorKind::InvalidInput,
        StepErrorKind::Connection,
        StepErrorKind::Retryable,
        StepErrorKind::Fatal,
        StepErrorKind::OutOfFuel,
        StepErrorKind::MemoryLimit,
        StepErrorKind::Timeout,
        StepErrorKind::Trap,
        StepErrorKind::OutputTooLarge,
        StepErrorKind::InvalidOutput,
        StepErrorKind::LogLimit,
        StepErrorKind::HostCallLimit,
        StepErrorKind::Input,
        StepErrorKind::Expression,
        StepErrorKind::Host,
        StepErrorKind::Busy,
        StepErrorKind::Limit,
        StepErrorKind::TimeLimit,
    ];

    /// The kind as records and the API write it (its serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            StepErrorKind::InvalidInput => "invalid-input",
            StepErrorKind::Connection => "connection",
            StepErrorKind::Retryable => "retryable",
            StepErrorKind::Fatal => "fatal",
            StepErrorKind::OutOfFuel => "out-of-fuel",
            StepErrorKind::MemoryLimit => "memory-limit",
            StepErrorKind::Timeout => "timeout",
            StepErrorKind::Trap => "trap",
            StepErrorKind::OutputTooLarge => "output-too-large",
            StepErrorKind::InvalidOutput => "invalid-output",
            StepErrorKind::LogLimit => "log-limit",
            StepErrorKind::HostCallLimit => "host-call-limit",
            StepErrorKind::Input => "input",
            StepErrorKind::Expression => "expression",
            StepErrorKind::Host => "host",
            StepErrorKind::Busy => "busy",
            StepErrorKind::Limit => "limit",
            StepErrorKind::TimeLimit => "time-limit",
        }
    }

    /// The guest error kind this is, for the four kinds a guest can return itself.
    pub fn guest_kind(self) -> Option<GuestErrorKind> {
        match self {
            StepErrorKind::InvalidInput => Some(GuestErrorKind::InvalidInput),
            StepErrorKind::Connection => Some(GuestErrorKind::Connection),
            StepErrorKind::Retryable => Some(GuestErrorKind::Retryable),
            StepErrorKind::Fatal => Some(GuestErrorKind::Fatal),
            _ => None,
        }
    }

    /// The kind of a sandbox outcome that is neither a completion nor a guest error.
    pub fn of_outcome(outcome: &Outcome) -> Option<StepErrorKind> {
        Some(match outcome {
            Outcome::Completed { .. } | Outcome::GuestError { .. } => return None,
            Outcome::OutOfFuel { .. } => StepErrorKind::OutOfFuel,
            Outcome::MemoryLimit { .. } => StepErrorKind::MemoryLimit,
            Outcome::Timeout { .. } => StepErrorKind::Timeout,
            Outcome::Trap { .. } => StepErrorKind::Trap,
            Outcome::OutputTooLarge { .. } => StepErrorKind::OutputTooLarge,
            Outcome::InvalidOutput { .. } => StepErrorKind::InvalidOutput,
            Outcome::LogLimit { .. } => StepErrorKind::LogLimit,
            Outcome::HostCallLimit { .. } => StepErrorKind::HostCallLimit,
        })
    }
}

impl From<GuestErrorKind> for StepErrorKind {
    fn from(kind: GuestErrorKind) -> Self {
        match kind {
            GuestErrorKind::InvalidInput => StepErrorKind::InvalidInput,
            GuestErrorKind::Connection => StepErrorKind::Connection,
            GuestErrorKind::Retryable => StepErrorKind::Retryable,
            GuestErrorKind::Fatal => StepErrorKind::Fatal,
        }
    }
}

impl std::fmt::Display for StepErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// Comparisons with the wire strings, for callers (and tests) that read kinds as text.
impl PartialEq<str> for StepErrorKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for StepErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl StepError {
    /// An error of `kind` with `message`, without a connection.
    pub fn new(kind: StepErrorKind, message: impl Into<String>) -> Self {
        StepError {
            kind,
            message: message.into(),
            connection: None,
        }
    }

    /// The error as a step result: `{"error": {"kind", "message"}}`.
    pub fn to_result(&self) -> Value {
        let mut error = serde_json::Map::new();
        error.insert("kind".into(), Value::String(self.kind.as_str().to_string()));
        error.insert("message".into(), Value::String(self.message.clone()));
        if let Some(connection) = &self.connection {
            error.insert("connection".into(), Value::String(connection.clone()));
        }
        let mut result = serde_json::Map::new();
        result.insert("error".into(), Value::Object(error));
        Value::Object(result)
    }
}

/// A guest's error as a step error: its kind, message and connection carry over.
impl From<GuestError> for StepError {
    fn from(error: GuestError) -> Self {
        StepError {
            kind: error.kind.into(),
            message: error.message,
            connection: error.connection.filter(|key| !key.is_empty()),
        }
    }
}

/// The start of a step's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputSummary {
    /// Size of the input's JSON, in bytes.
    pub bytes: usize,
    /// The first bytes of the input's JSON.
    pub preview: String,
    /// Whether the preview is shorter than the input.
    pub truncated: bool,
}

impl InputSummary {
    pub(crate) fn of(text: &str, max: usize) -> Self {
        let mut end = text.len().min(max);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        InputSummary {
            bytes: text.len(),
            preview: text[..end].to_string(),
            truncated: end < text.len(),
        }
    }
}

/// A result in the record: inline, or stored by reference when it is large.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordedValue {
    /// The value itself.
    Inline(Arc<Value>),
    /// The value is kept in the [`ResultStore`].
    Stored {
        /// The [`ResultStore`] reference.
        reference: String,
        /// Size of the value's JSON, in bytes.
        bytes: usize,
        /// The first bytes of the JSON.
        preview: String,
    },
}

impl Serialize for RecordedValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RecordedValue::Inline(value) => {
                let mut state = serializer.serialize_struct("RecordedValue", 2)?;
                state.serialize_field("storage", "inline")?;
                state.serialize_field("value", value.as_ref())?;
                state.end()
            }
            RecordedValue::Stored {
                reference,
                bytes,
                preview,
            } => {
                let mut state = serializer.serialize_struct("RecordedValue", 4)?;
                state.serialize_field("storage", "stored")?;
                state.serialize_field("reference", reference)?;
                state.serialize_field("bytes", bytes)?;
                state.serialize_field("preview", preview)?;
                state.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for RecordedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(tag = "storage", rename_all = "camelCase")]
        enum Wire {
            Inline {
                value: Value,
            },
            Stored {
                reference: String,
                bytes: usize,
                preview: String,
            },
        }
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Inline { value } => RecordedValue::Inline(Arc::new(value)),
            Wire::Stored {
                reference,
                bytes,
                preview,
            } => RecordedValue::Stored {
                reference,
                bytes,
                preview,
            },
        })
    }
}

/// The HTTP response a synchronous caller of the execution receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowResponse {
    /// HTTP status code.
    pub status: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Response headers, name and value, in order.
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The response's content type.
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The response body.
    pub body: Option<RecordedValue>,
}

/// Keeps results too large for the record. A host backs this with blob storage.
#[async_trait]
pub trait ResultStore: Send + Sync {
    /// Stores `data` (the result's JSON) and returns a reference to it.
    async fn put(&self, execution_id: &str, step: &str, data: Vec<u8>) -> Result<String, String>;
    /// The data behind a reference.
    async fn get(&self, reference: &str) -> Option<Vec<u8>>;
}

/// Results in process memory, referenced as `memory://<execution>/<step>/<n>`.
#[derive(Debug, Default)]
pub struct MemoryResultStore {
    next: AtomicU64,
    blobs: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryResultStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ResultStore for MemoryResultStore {
    async fn put(&self, execution_id: &str, step: &str, data: Vec<u8>) -> Result<String, String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let reference = format!("memory://{execution_id}/{step}/{n}");
        self.blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(reference.clone(), data);
        Ok(reference)
    }

    async fn get(&self, reference: &str) -> Option<Vec<u8>> {
        self.blobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(reference)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recorded_values_round_trip() {
        for value in [
            RecordedValue::Inline(Arc::new(json!({"a": 1}))),
            RecordedValue::Stored {
                reference: "memory://e/s/0".into(),
                bytes: 10,
                preview: "{\"a\"".into(),
            },
        ] {
            let text = serde_json::to_string(&value).unwrap();
            let back: RecordedValue = serde_json::from_str(&text).unwrap();
            assert_eq!(back, value);
        }
        assert_eq!(
            serde_json::to_value(RecordedValue::Inline(Arc::new(json!(1)))).unwrap(),
            json!({"storage": "inline", "value": 1})
        );
    }

    #[test]
    fn summaries_cut_on_a_character_boundary() {
        let summary = InputSummary::of("ééé", 3);
        assert_eq!(summary.preview, "é");
        assert!(summary.truncated);
        assert_eq!(summary.bytes, 6);
    }

    #[test]
    fn step_error_kinds_keep_their_wire_strings() {
        // The strings stored records and the API have carried; a rename breaks them.
        let wire = [
            "invalid-input",
            "connection",
            "retryable",
            "fatal",
            "out-of-fuel",
            "memory-limit",
            "timeout",
            "trap",
            "output-too-large",
            "invalid-output",
            "log-limit",
            "host-call-limit",
            "input",
            "expression",
            "host",
            "busy",
            "limit",
            "time-limit",
        ];
        for (kind, text) in StepErrorKind::ALL.into_iter().zip(wire) {
            assert_eq!(kind.as_str(), text);
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(text));
            let back: StepErrorKind = serde_json::from_value(json!(text)).unwrap();
            assert_eq!(back, kind);
        }
        let error = StepError::new(StepErrorKind::TimeLimit, "late");
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"kind": "time-limit", "message": "late"})
        );
    }
}
