//! What every hostile test guest shares: [`hostile_connector!`] declares and exports a
//! connector whose only working export is `run-action` (everything else fails with
//! `fatal("not supported")`), so each guest's source is just its hostile behaviour.

pub use sluice_sdk::component::exports::sluice::flow::connector::Guest;
pub use sluice_sdk::component::sluice::flow::types::{
    Data, Error, ExecutionContext, HttpRequest, Output, TriggerOutcome,
};

/// The manifest of a hostile guest: one action, `run`.
pub fn manifest(key: &str, description: &str) -> String {
    format!(
        r#"{{"key":"{key}","version":"0.1.0","display":{{"label":"{key}","description":"{description}"}},"actions":{{"run":{{"display":{{"label":"Run","description":"{description}"}},"inputs":{{"type":"object"}}}}}}}}"#
    )
}

/// The error of every export a hostile guest does not implement.
/// The non-negative integer under `key` of a hostile guest's JSON input, or `default`
/// when the input is empty or has no such key.
pub fn requested(input: &str, key: &str, default: usize) -> Result<usize, Error> {
    if input.trim().is_empty() {
        return Ok(default);
    }
    let value: serde_json::Value = serde_json::from_str(input)
        .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
    match value.get(key) {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(n) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Error::InvalidInput(format!("`{key}` must be a non-negative integer"))),
    }
}

pub fn unsupported() -> Error {
    Error::Fatal("not supported".to_string())
}

/// Declares and exports a connector whose `run-action` calls `$run(input)`.
///
/// The crate using it must depend on `sluice-sdk` too: the export macro names it.
#[macro_export]
macro_rules! hostile_connector {
    (key: $key:literal, description: $description:literal, run: $run:path $(,)?) => {
        struct Hostile;

        sluice_sdk::component::export_component!(Hostile);

        impl $crate::Guest for Hostile {
            fn manifest() -> String {
                $crate::manifest($key, $description)
            }

            fn run_action(
                _ctx: $crate::ExecutionContext,
                _action: String,
                input: String,
            ) -> Result<$crate::Output, $crate::Error> {
                $run(input)
            }

            fn run_trigger(
                _ctx: $crate::ExecutionContext,
                _trigger: String,
                _request: $crate::HttpRequest,
                _inputs: String,
            ) -> Result<$crate::TriggerOutcome, $crate::Error> {
                Err($crate::unsupported())
            }

            fn run_data_source(
                _ctx: $crate::ExecutionContext,
                _name: String,
                _input: String,
            ) -> Result<String, $crate::Error> {
                Err($crate::unsupported())
            }

            fn on_instance_deploy(
                _ctx: $crate::ExecutionContext,
                _trigger: String,
                _inputs: String,
            ) -> Result<(), $crate::Error> {
                Err($crate::unsupported())
            }

            fn on_instance_remove(
                _ctx: $crate::ExecutionContext,
                _trigger: String,
                _inputs: String,
            ) -> Result<(), $crate::Error> {
                Err($crate::unsupported())
            }
        }
    };
}
