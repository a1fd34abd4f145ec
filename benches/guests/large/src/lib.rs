//! A multi-megabyte Sluice component for the cold-path benchmark: `echo` exactly as
//! `examples/hello` has it (one log line, the input returned), plus the generated
//! actions `op0` .. `op1999` of `build.rs` (each reads `fieldN` from its JSON input and
//! returns a small JSON object), which make the component as large as a connector with
//! a big dependency tree.

use serde_json::{Value, json};
use sluice_sdk::component::exports::sluice::flow::connector::Guest;
use sluice_sdk::component::sluice::flow::log;
use sluice_sdk::component::sluice::flow::types::{
    Data, Error, ExecutionContext, HttpRequest, Output, TriggerOutcome,
};

include!(concat!(env!("OUT_DIR"), "/generated.rs"));

struct Large;

sluice_sdk::component::export_component!(Large);

const MANIFEST: &str = r#"{"key":"large","version":"0.1.0","display":{"label":"Large","description":"A multi-megabyte component for the cold-path benchmark."},"actions":{"echo":{"display":{"label":"Echo","description":"Returns its input unchanged."},"inputs":{"type":"object"}}}}"#;

impl Guest for Large {
    fn manifest() -> String {
        MANIFEST.to_string()
    }

    fn run_action(_ctx: ExecutionContext, action: String, input: String) -> Result<Output, Error> {
        if action == "echo" {
            log::write(
                log::Level::Info,
                "echo",
                Some(&json!({"bytes": input.len()}).to_string()),
            );
            return Ok(json_output(input));
        }
        let value: Value = serde_json::from_str(&input)
            .map_err(|err| Error::InvalidInput(format!("input is not JSON: {err}")))?;
        match dispatch(&action, &value) {
            Some(result) => Ok(json_output(result.to_string())),
            None => Err(Error::InvalidInput(format!("unknown action `{action}`"))),
        }
    }

    fn run_trigger(
        _ctx: ExecutionContext,
        trigger: String,
        _request: HttpRequest,
        _inputs: String,
    ) -> Result<TriggerOutcome, Error> {
        Err(Error::InvalidInput(format!("unknown trigger `{trigger}`")))
    }

    fn run_data_source(
        _ctx: ExecutionContext,
        name: String,
        _input: String,
    ) -> Result<String, Error> {
        Err(Error::InvalidInput(format!("unknown data source `{name}`")))
    }

    fn on_instance_deploy(
        _ctx: ExecutionContext,
        _trigger: String,
        _inputs: String,
    ) -> Result<(), Error> {
        Ok(())
    }

    fn on_instance_remove(
        _ctx: ExecutionContext,
        _trigger: String,
        _inputs: String,
    ) -> Result<(), Error> {
        Ok(())
    }
}

fn json_output(json: String) -> Output {
    Output {
        data: Data::Json(json),
        content_type: None,
        status: None,
        headers: Vec::new(),
        branch: None,
    }
}
