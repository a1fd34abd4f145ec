//! `host-call-loop`: a hostile guest that calls `context::current()` in a tight endless
//! loop. Unlike `spin` it spends most of its time in the host, so it tests that the
//! host's CPU budget also stops a guest that keeps crossing into host code.
//!
//! Everything but `run-action` fails with `fatal("not supported")`.

use sluice_sdk::component::exports::sluice::flow::connector::Guest;
use sluice_sdk::component::sluice::flow::context;
use sluice_sdk::component::sluice::flow::types::{
    Error, ExecutionContext, HttpRequest, Output, TriggerOutcome,
};
use std::hint::black_box;

struct HostCallLoop;

sluice_sdk::component::export_component!(HostCallLoop);

impl Guest for HostCallLoop {
    fn manifest() -> String {
        r#"{"key":"host-call-loop","version":"0.1.0","display":{"label":"Host call loop","description":"Calls the host in an endless loop."},"actions":{"run":{"display":{"label":"Run","description":"Calls the host in an endless loop."},"inputs":{"type":"object"}}}}"#.to_string()
    }

    fn run_action(
        _ctx: ExecutionContext,
        _action: String,
        _input: String,
    ) -> Result<Output, Error> {
        loop {
            black_box(context::current());
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
