//! `log-flood`: a hostile guest that writes 1 KiB log lines in an endless loop. It
//! tests the host's per-execution log volume limit (the execution must end with a
//! log-limit outcome instead of filling the log store).
//!
//! Everything but `run-action` fails with `fatal("not supported")`.

use sluice_sdk::component::exports::sluice::flow::connector::Guest;
use sluice_sdk::component::sluice::flow::log;
use sluice_sdk::component::sluice::flow::types::{
    Error, ExecutionContext, HttpRequest, Output, TriggerOutcome,
};

struct LogFlood;

sluice_sdk::component::export_component!(LogFlood);

impl Guest for LogFlood {
    fn manifest() -> String {
        r#"{"key":"log-flood","version":"0.1.0","display":{"label":"Log flood","description":"Writes log lines forever."},"actions":{"run":{"display":{"label":"Run","description":"Writes log lines forever."},"inputs":{"type":"object"}}}}"#.to_string()
    }

    fn run_action(
        _ctx: ExecutionContext,
        _action: String,
        _input: String,
    ) -> Result<Output, Error> {
        let message = "x".repeat(1024);
        loop {
            log::write(log::Level::Info, &message, None);
        }
    }

    fn run_trigger(
        _ctx: ExecutionContext,
        _trigger: String,
        _request: HttpRequest,
        _inputs: String,
    ) -> Result<TriggerOutcome, Error> {
        Err(unsupported())
    }

    fn run_data_source(
        _ctx: ExecutionContext,
        _name: String,
        _input: String,
    ) -> Result<String, Error> {
        Err(unsupported())
    }

    fn on_instance_deploy(
        _ctx: ExecutionContext,
        _trigger: String,
        _inputs: String,
    ) -> Result<(), Error> {
        Err(unsupported())
    }

    fn on_instance_remove(
        _ctx: ExecutionContext,
        _trigger: String,
        _inputs: String,
    ) -> Result<(), Error> {
        Err(unsupported())
    }
}

fn unsupported() -> Error {
    Error::Fatal("not supported".to_string())
}
