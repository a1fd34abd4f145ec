//! Guest logging: the [`LogSink`] trait that receives an execution's log lines, two
//! sinks (in memory, and `tracing`), and the `sluice:flow/log` host function, which
//! enforces the per-line and per-execution volume limits.

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{HostContext, HostTrap};
use crate::bindings::flow_world::sluice::flow::log as wit;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        })
    }
}

impl From<wit::Level> for LogLevel {
    fn from(level: wit::Level) -> Self {
        match level {
            wit::Level::Trace => LogLevel::Trace,
            wit::Level::Debug => LogLevel::Debug,
            wit::Level::Info => LogLevel::Info,
            wit::Level::Warn => LogLevel::Warn,
            wit::Level::Error => LogLevel::Error,
        }
    }
}

/// One log line of an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    pub execution_id: String,
    /// The step that wrote the line, when the execution is a step of a flow.
    pub step: Option<String>,
    pub level: LogLevel,
    pub message: String,
    /// Structured fields as a JSON object, when the guest gave any.
    pub fields: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Receives the log lines of executions. Called on the execution's thread, so an
/// implementation must not block (buffer, or hand off to a channel).
pub trait LogSink: Send + Sync {
    fn write(&self, record: LogRecord);
}

/// Keeps every line in memory; for tests and the test harness.
#[derive(Debug, Default, Clone)]
pub struct MemoryLogSink {
    records: Arc<Mutex<Vec<LogRecord>>>,
}

impl MemoryLogSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the lines written so far.
    pub fn records(&self) -> Vec<LogRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Removes and returns the lines written so far.
    pub fn take(&self) -> Vec<LogRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl LogSink for MemoryLogSink {
    fn write(&self, record: LogRecord) {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }
}

/// Forwards lines to `tracing` under the target `sluice::guest`, inside the
/// execution's span.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingLogSink;

impl LogSink for TracingLogSink {
    fn write(&self, record: LogRecord) {
        let fields = record.fields.as_deref().unwrap_or("");
        match record.level {
            LogLevel::Trace => {
                tracing::trace!(target: "sluice::guest", fields, "{}", record.message)
            }
            LogLevel::Debug => {
                tracing::debug!(target: "sluice::guest", fields, "{}", record.message)
            }
            LogLevel::Info => tracing::info!(target: "sluice::guest", fields, "{}", record.message),
            LogLevel::Warn => tracing::warn!(target: "sluice::guest", fields, "{}", record.message),
            LogLevel::Error => {
                tracing::error!(target: "sluice::guest", fields, "{}", record.message)
            }
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("… [truncated]");
    text
}

impl HostContext {
    /// Counts `bytes` of log volume and writes the record; the volume limit ends the
    /// execution, because a guest that floods logs is broken or hostile.
    pub(crate) fn emit_log(
        &mut self,
        level: LogLevel,
        message: String,
        fields: Option<String>,
    ) -> wasmtime::Result<()> {
        let volume = message.len() + fields.as_ref().map_or(0, String::len);
        self.log_bytes = self.log_bytes.saturating_add(volume as u64);
        if self.log_bytes > self.limits.log_bytes as u64 {
            return Err(wasmtime::Error::new(HostTrap::LogLimit {
                limit: self.limits.log_bytes,
            }));
        }
        let fields = fields.map(|fields| {
            // Keep the record valid JSON whatever the guest sent.
            if serde_json::from_str::<serde::de::IgnoredAny>(&fields).is_ok() {
                fields
            } else {
                serde_json::json!({ "unparsed": fields }).to_string()
            }
        });
        self.caps.log.write(LogRecord {
            execution_id: self.context.execution_id.clone(),
            step: self.context.step.clone(),
            level,
            message: truncate(message, self.limits.log_line_bytes),
            fields,
            timestamp_ms: now_ms(),
        });
        Ok(())
    }
}

impl wit::Host for HostContext {
    fn write(
        &mut self,
        level: wit::Level,
        message: String,
        fields: Option<String>,
    ) -> wasmtime::Result<()> {
        self.charge_host_call()?;
        self.emit_log(level.into(), message, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncates_on_a_character_boundary() {
        assert_eq!(truncate("short".into(), 10), "short");
        assert_eq!(truncate("ééé".into(), 3), "é… [truncated]");
    }
}
