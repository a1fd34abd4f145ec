//! What an execution is asked to do ([`Call`]) and how it ended: the typed
//! [`Outcome`], always accompanied by a [`Metering`] report.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::World;
use crate::types::{GuestError, HttpRequest, Output, TriggerOutcome};

/// The guest export to call. Inputs are JSON documents as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum Call {
    /// `manifest()` of a component or a flow.
    Manifest,
    /// `run-action(ctx, action, input)`.
    Action {
        /// The action's key.
        action: String,
        /// Its input (JSON).
        input: String,
    },
    /// `run-trigger(ctx, trigger, request, inputs)`.
    Trigger {
        /// The trigger's key.
        trigger: String,
        /// The HTTP request received.
        request: HttpRequest,
        /// The trigger's inputs (JSON).
        inputs: String,
    },
    /// `run-data-source(ctx, name, input)`.
    DataSource {
        /// The data source's key.
        name: String,
        /// Its input (JSON).
        input: String,
    },
    /// `on-instance-deploy(ctx, trigger, inputs)`.
    InstanceDeploy {
        /// The trigger's key.
        trigger: String,
        /// The trigger's inputs (JSON).
        inputs: String,
    },
    /// `on-instance-remove(ctx, trigger, inputs)`.
    InstanceRemove {
        /// The trigger's key.
        trigger: String,
        /// The trigger's inputs (JSON).
        inputs: String,
    },
    /// `on-execution(ctx, payload)` of a code-native flow.
    FlowExecution {
        /// The trigger's payload (JSON).
        payload: String,
    },
}

impl Call {
    /// The export's WIT name.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Manifest => "manifest",
            Call::Action { .. } => "run-action",
            Call::Trigger { .. } => "run-trigger",
            Call::DataSource { .. } => "run-data-source",
            Call::InstanceDeploy { .. } => "on-instance-deploy",
            Call::InstanceRemove { .. } => "on-instance-remove",
            Call::FlowExecution { .. } => "on-execution",
        }
    }

    /// The world that exports this call, or `None` when both do.
    pub fn world(&self) -> Option<World> {
        match self {
            Call::Manifest => None,
            Call::FlowExecution { .. } => Some(World::Flow),
            _ => Some(World::Component),
        }
    }

    /// The JSON documents the caller passes in, with a name for error messages.
    pub(crate) fn json_inputs(&self) -> Vec<(&'static str, &str)> {
        match self {
            Call::Manifest => vec![],
            Call::Action { input, .. } | Call::DataSource { input, .. } => vec![("input", input)],
            Call::Trigger { inputs, .. }
            | Call::InstanceDeploy { inputs, .. }
            | Call::InstanceRemove { inputs, .. } => {
                vec![("inputs", inputs)]
            }
            Call::FlowExecution { payload } => vec![("payload", payload)],
        }
    }
}

/// What a successful call returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Returned {
    /// The manifest, as JSON text.
    Manifest(String),
    /// The output of an action or a flow.
    Output(Output),
    /// A trigger's decision.
    Trigger(TriggerOutcome),
    /// A data source's result, as JSON text.
    DataSource(String),
    /// A lifecycle hook completed.
    Done,
}

impl Returned {
    /// Bytes counted against the output limit.
    pub(crate) fn size(&self) -> usize {
        match self {
            Returned::Manifest(text) | Returned::DataSource(text) => text.len(),
            Returned::Output(output) => output.size(),
            Returned::Trigger(outcome) => outcome.size(),
            Returned::Done => 0,
        }
    }

    /// The JSON documents in the result, which must parse.
    pub(crate) fn json_documents(&self) -> Vec<&str> {
        use crate::types::Data;
        match self {
            Returned::Manifest(text) | Returned::DataSource(text) => vec![text],
            Returned::Output(Output {
                data: Data::Json(text),
                ..
            }) => vec![text],
            Returned::Trigger(TriggerOutcome::Accept {
                payload: Data::Json(text),
                ..
            }) => vec![text],
            _ => vec![],
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// The call returned successfully.
    Completed {
        /// What it returned.
        result: Returned,
    },
    /// The guest returned an error through the WIT `error` variant.
    GuestError {
        /// The error.
        error: GuestError,
    },
    /// The fuel budget ran out.
    #[serde(rename_all = "camelCase")]
    OutOfFuel {
        /// The budget.
        limit: u64,
    },
    /// The guest asked for more memory than its budget.
    #[serde(rename_all = "camelCase")]
    MemoryLimit {
        /// The budget, in bytes.
        limit: u64,
        /// The total the refused growth would have reached, in bytes.
        requested: u64,
    },
    /// The wall-clock deadline passed (in guest code or in a host call).
    #[serde(rename_all = "camelCase")]
    Timeout {
        /// The time limit, in milliseconds.
        limit_ms: u64,
    },
    /// The guest trapped (panic, stack overflow, bad memory access...).
    Trap {
        /// What trapped, in words.
        message: String,
        /// The wasm backtrace, when one was captured.
        backtrace: Option<String>,
        /// What the guest wrote to stderr (a Rust panic message lands here).
        stderr: Option<String>,
    },
    /// The result exceeded the output limit.
    #[serde(rename_all = "camelCase")]
    OutputTooLarge {
        /// The result's size, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The guest returned JSON that does not parse (or is nested too deep).
    InvalidOutput {
        /// What is wrong with it.
        message: String,
    },
    /// The guest exceeded the log volume limit.
    #[serde(rename_all = "camelCase")]
    LogLimit {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The guest exceeded the host call limit.
    #[serde(rename_all = "camelCase")]
    HostCallLimit {
        /// The limit.
        limit: u64,
    },
}

impl Outcome {
    /// Whether the call completed.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Completed { .. })
    }

    /// Whether a budget ended the execution (fuel, memory, time, output, logs, host calls).
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Outcome::OutOfFuel { .. }
                | Outcome::MemoryLimit { .. }
                | Outcome::Timeout { .. }
                | Outcome::OutputTooLarge { .. }
                | Outcome::LogLimit { .. }
                | Outcome::HostCallLimit { .. }
        )
    }

    /// A short machine-readable name of the outcome (`completed`, `out-of-fuel`, ...).
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Completed { .. } => "completed",
            Outcome::GuestError { .. } => "guest-error",
            Outcome::OutOfFuel { .. } => "out-of-fuel",
            Outcome::MemoryLimit { .. } => "memory-limit",
            Outcome::Timeout { .. } => "timeout",
            Outcome::Trap { .. } => "trap",
            Outcome::OutputTooLarge { .. } => "output-too-large",
            Outcome::InvalidOutput { .. } => "invalid-output",
            Outcome::LogLimit { .. } => "log-limit",
            Outcome::HostCallLimit { .. } => "host-call-limit",
        }
    }
}

/// Resources an execution used. Present for every outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metering {
    /// Fuel consumed by instantiation and the call.
    pub fuel_used: u64,
    /// Highest total size of the instance's linear memories, in bytes.
    pub peak_memory_bytes: u64,
    /// Wall time from the start of instantiation to the end of the call.
    #[serde(with = "duration_us", rename = "wallTimeUs")]
    pub wall_time: Duration,
    /// Time spent instantiating (a part of `wall_time`).
    #[serde(with = "duration_us", rename = "instantiateTimeUs")]
    pub instantiate_time: Duration,
    /// Host functions called by the guest.
    pub host_calls: u64,
    /// Log volume written, in bytes.
    pub log_bytes: u64,
}

/// The outcome of an execution and what it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionReport {
    /// How it ended.
    pub outcome: Outcome,
    /// What it used.
    pub metering: Metering,
}

mod duration_us {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(deserializer)?))
    }
}
