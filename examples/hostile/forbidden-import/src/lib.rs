//! `forbidden-import`: a component of the right world that also imports
//! `wasi:sockets` interfaces, because its action opens a TCP connection with
//! `std::net::TcpStream`. Sluice links no sockets, so the host must refuse it at load
//! time rather than fail on first use. The connect sits on the exported action's path,
//! so the linker cannot drop it and the imports survive into the built component.
//!
//! Everything but `run-action` fails with `fatal("not supported")`.

use sluice_sdk::component::exports::sluice::flow::connector::Guest;
use sluice_sdk::component::sluice::flow::types::{
    Error, ExecutionContext, HttpRequest, Output, TriggerOutcome,
};
use std::net::TcpStream;

struct ForbiddenImport;

sluice_sdk::component::export_component!(ForbiddenImport);

impl Guest for ForbiddenImport {
    fn manifest() -> String {
        r#"{"key":"forbidden-import","version":"0.1.0","display":{"label":"Forbidden import","description":"Opens a TCP socket, which Sluice does not offer."},"actions":{"run":{"display":{"label":"Run","description":"Opens a TCP socket, which Sluice does not offer."},"inputs":{"type":"object"}}}}"#.to_string()
    }

    fn run_action(
        _ctx: ExecutionContext,
        _action: String,
        _input: String,
    ) -> Result<Output, Error> {
        match TcpStream::connect("127.0.0.1:9") {
            Ok(_) => Err(Error::Fatal(
                "connected, which a Sluice host must never allow".to_string(),
            )),
            Err(e) => Err(Error::Fatal(format!("connect failed: {e}"))),
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
