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
