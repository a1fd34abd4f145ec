//! Guest logging: the [`LogSink`] trait that receives an execution's log lines, two
//! sinks (in memory, and `tracing`), the per-execution `LogBudget` every record is
//! charged against (guest lines and host-written ones alike), and the
//! `sluice:flow/log` host function, which enforces the per-line and per-execution
//! volume limits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{HostContext, HostTrap};
use crate::bindings::flow_world::sluice::flow::log as wit;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Finest detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that did not stop the execution.
    Warn,
    /// A failure.
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
    /// The execution that wrote it.
    pub execution_id: String,
    /// The step that wrote the line, when the execution is a step of a flow.
    pub step: Option<String>,
    /// Its level.
    pub level: LogLevel,
    /// Its text.
    pub message: String,
    /// Structured fields as a JSON object, when the guest gave any.
    pub fields: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Receives the log lines of executions. Called on the execution's thread, so an
/// implementation must not block (buffer, or hand off to a channel).
pub trait LogSink: Send + Sync {
    /// Takes one record (already within the execution's log budget).
    fn write(&self, record: LogRecord);
}

/// Keeps every line in memory; for tests and the test harness.
#[derive(Debug, Default, Clone)]
pub struct MemoryLogSink {
    records: Arc<Mutex<Vec<LogRecord>>>,
}

impl MemoryLogSink {
    /// An empty sink.
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

/// What every log record costs against [`crate::Limits::log_bytes`] on top of its
/// message and fields. A record is never free: storing it costs an id, a timestamp, a
/// level and a row whatever its text, so without this overhead a guest could write a
/// million empty lines on a zero-byte budget.
pub const LOG_RECORD_OVERHEAD_BYTES: u64 = 64;

/// The log volume of one execution, shared by everything that writes into its log
/// (the guest's `log.write` calls and lines the host writes on the guest's behalf).
/// Cloning shares the counter.
#[derive(Debug, Clone)]
pub(crate) struct LogBudget {
    used: Arc<AtomicU64>,
    limit: u64,
}

impl LogBudget {
    pub(crate) fn new(limit: usize) -> Self {
        LogBudget {
            used: Arc::new(AtomicU64::new(0)),
            limit: limit as u64,
        }
    }

    /// Bytes charged so far, the record that went over the limit included.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The cost of one record: the fixed overhead plus its message and fields.
    pub(crate) fn cost(message: &str, fields: Option<&str>) -> u64 {
        LOG_RECORD_OVERHEAD_BYTES
            .saturating_add(message.len() as u64)
            .saturating_add(fields.map_or(0, str::len) as u64)
    }

    /// Charges one record; past the limit the record must not be written and the
    /// execution ends with `log-limit`. The refused record stays charged, so the
    /// metering of a flooded execution shows the budget was passed.
    pub(crate) fn charge(&self, message: &str, fields: Option<&str>) -> Result<(), HostTrap> {
        let cost = Self::cost(message, fields);
        let before = self.used.fetch_add(cost, Ordering::Relaxed);
        if before.saturating_add(cost) > self.limit {
            return Err(HostTrap::LogLimit {
                limit: usize::try_from(self.limit).unwrap_or(usize::MAX),
            });
        }
        Ok(())
    }
}

/// Charges `message` against `budget` and writes it to `sink` as a record of the
/// execution: the one way host-written lines (egress warnings, for example) reach an
/// execution's log, so that they cannot bypass the guest's log budget. An error
/// means the budget is spent and nothing was written.
pub(crate) fn write_host_record(
    budget: &LogBudget,
    sink: &dyn LogSink,
    execution_id: &str,
    step: Option<&str>,
    level: LogLevel,
    message: String,
    fields: Option<String>,
) -> Result<(), HostTrap> {
    budget.charge(&message, fields.as_deref())?;
    sink.write(LogRecord {
        execution_id: execution_id.to_string(),
        step: step.map(str::to_string),
        level,
        message,
        fields,
        timestamp_ms: now_ms(),
    });
    Ok(())
}

impl HostContext {
    /// Charges a record the host writes into this execution's log (not a host call)
    /// and writes it; see [`write_host_record`].
    #[allow(dead_code)] // used by host-written warnings (egress)
    pub(crate) fn write_host_log(
        &self,
        level: LogLevel,
        message: String,
        fields: Option<String>,
    ) -> Result<(), HostTrap> {
        write_host_record(
            &self.log_budget,
            self.caps.log.as_ref(),
            &self.context.execution_id,
            self.context.step.as_deref(),
            level,
            message,
            fields,
        )
    }

    /// Charges the record against the log budget and writes it; the volume limit ends
    /// the execution, because a guest that floods logs is broken or hostile.
    pub(crate) fn emit_log(
        &mut self,
        level: LogLevel,
        message: String,
        fields: Option<String>,
    ) -> wasmtime::Result<()> {
        self.log_budget
            .charge(&message, fields.as_deref())
            .map_err(wasmtime::Error::new)?;
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
    use super::{LOG_RECORD_OVERHEAD_BYTES, LogBudget, truncate};

    #[test]
    fn every_record_costs_the_overhead() {
        let budget = LogBudget::new(3 * LOG_RECORD_OVERHEAD_BYTES as usize);
        for _ in 0..3 {
            assert!(budget.charge("", None).is_ok());
        }
        assert!(budget.charge("", None).is_err());
        assert_eq!(budget.used(), 4 * LOG_RECORD_OVERHEAD_BYTES);
        assert_eq!(
            LogBudget::cost("abc", Some("{}")),
            LOG_RECORD_OVERHEAD_BYTES + 5
        );
    }

    #[test]
    fn truncates_on_a_character_boundary() {
        assert_eq!(truncate("short".into(), 10), "short");
        assert_eq!(truncate("ééé".into(), 3), "é… [truncated]");
    }
}
