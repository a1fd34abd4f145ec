//! Logging into the execution's log through the host's `log.write`: [`Level`], the
//! functions behind the `trace!` .. `error!` macros, and the macros themselves
//! (`info!("created {id}")`, `info!(fields = json!({"id": id}), "created")`).

use serde::Serialize;

use crate::bindings::flow::sluice::flow::log as wit;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Finest detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that did not stop the handler.
    Warn,
    /// A failure.
    Error,
}

impl From<Level> for wit::Level {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        }
    }
}

/// Writes one log line. The host caps line length (4 KiB) and the execution's log
/// volume; exceeding the volume ends the execution with a `log-limit` outcome.
pub fn write(level: Level, message: &str) {
    wit::write(level.into(), message, None);
}

/// Writes one log line with structured fields (a JSON object; any other JSON value is
/// logged as `{"value": ...}`).
pub fn write_with_fields<F: Serialize + ?Sized>(level: Level, message: &str, fields: &F) {
    match fields_json(fields) {
        Ok(fields) => wit::write(level.into(), message, Some(&fields)),
        // Logging must never fail the handler: keep the line, say why the fields are gone.
        Err(e) => wit::write(
            level.into(),
            &format!("{message} (fields not logged: {e})"),
            None,
        ),
    }
}

/// The fields as JSON object text, wrapping non-objects so the host always gets the
/// object the WIT promises.
fn fields_json<F: Serialize + ?Sized>(fields: &F) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(fields)?;
    let object = match value {
        serde_json::Value::Object(_) => value,
        other => serde_json::json!({ "value": other }),
    };
    serde_json::to_string(&object)
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sluice_log {
    ($level:expr, fields = $fields:expr, $($arg:tt)+) => {
        $crate::log::write_with_fields($level, &::std::format!($($arg)+), &$fields)
    };
    ($level:expr, $($arg:tt)+) => {
        $crate::log::write($level, &::std::format!($($arg)+))
    };
}

/// Logs at trace level: `trace!("raw body: {body}")`, or with structured fields
/// `trace!(fields = json!({"bytes": n}), "read body")`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::__sluice_log!($crate::log::Level::Trace, $($arg)+) };
}

/// Logs at debug level; same forms as [`trace!`](crate::trace!).
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::__sluice_log!($crate::log::Level::Debug, $($arg)+) };
}

/// Logs at info level; same forms as [`trace!`](crate::trace!).
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::__sluice_log!($crate::log::Level::Info, $($arg)+) };
}

/// Logs at warn level; same forms as [`trace!`](crate::trace!).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::__sluice_log!($crate::log::Level::Warn, $($arg)+) };
}

/// Logs at error level; same forms as [`trace!`](crate::trace!).
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::__sluice_log!($crate::log::Level::Error, $($arg)+) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_always_an_object() {
        assert_eq!(fields_json(&json!({"id": 1})).unwrap(), r#"{"id":1}"#);
        assert_eq!(fields_json(&[1, 2]).unwrap(), r#"{"value":[1,2]}"#);
        assert_eq!(fields_json("x").unwrap(), r#"{"value":"x"}"#);
    }
}
