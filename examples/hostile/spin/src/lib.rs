//! `spin`: a hostile guest whose action never returns and never calls the host.
//! Only the host's CPU budget (epoch interruption or fuel) can stop it, so it tests
//! that a guest cannot hold an executor thread forever.
//!
//! Everything but `run-action` fails with `fatal("not supported")`.

use sluice_sdk::component::exports::sluice::flow::connector::Guest;
use sluice_sdk::component::sluice::flow::types::{
    Error, ExecutionContext, HttpRequest, Output, TriggerOutcome,
};
use std::hint::black_box;

struct Spin;

sluice_sdk::component::export_component!(Spin);

impl Guest for Spin {
    fn manifest() -> String {
        r#"{"key":"spin","version":"0.1.0","display":{"label":"Spin","description":"Loops forever without calling the host."},"actions":{"run":{"display":{"label":"Run","description":"Loops forever without calling the host."},"inputs":{"type":"object"}}}}"#.to_string()
    }

    fn run_action(
        _ctx: ExecutionContext,
        _action: String,
        _input: String,
    ) -> Result<Output, Error> {
        // black_box makes every iteration observable, so the optimiser cannot prove the
        // loop side-effect free and replace it with a trap or delete it.
        let mut n: u64 = 0;
        loop {
            n = black_box(n.wrapping_add(1));
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
