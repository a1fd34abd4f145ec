//! `huge-output`: a hostile guest that returns an arbitrarily large output: input
//! `{"bytes": N}` (default 64 MiB) yields a JSON string whose content is N bytes of
//! `a` (N + 2 bytes of JSON with the quotes). It tests the host's output size limit.
//!
//! Everything but `run-action` fails with `fatal("not supported")`.

use serde_json::Value;
use sluice_sdk::component::exports::sluice::flow::connector::Guest;
use sluice_sdk::component::sluice::flow::types::Data;
use sluice_sdk::component::sluice::flow::types::{
    Error, ExecutionContext, HttpRequest, Output, TriggerOutcome,
};

struct HugeOutput;

sluice_sdk::component::export_component!(HugeOutput);

impl Guest for HugeOutput {
    fn manifest() -> String {
        r#"{"key":"huge-output","version":"0.1.0","display":{"label":"Huge output","description":"Returns an output as large as requested."},"actions":{"run":{"display":{"label":"Run","description":"Returns an output as large as requested."},"inputs":{"type":"object"}}}}"#.to_string()
    }

    fn run_action(_ctx: ExecutionContext, _action: String, input: String) -> Result<Output, Error> {
        let bytes = requested_bytes(&input)?;
        let mut json = String::new();
        json.try_reserve_exact(bytes.saturating_add(2))
            .map_err(|e| Error::Fatal(format!("cannot allocate {bytes} bytes: {e}")))?;
        json.push('"');
        json.extend(std::iter::repeat_n('a', bytes));
        json.push('"');
        Ok(Output {
            data: Data::Json(json),
            content_type: None,
            status: None,
            headers: Vec::new(),
            branch: None,
        })
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

const DEFAULT_BYTES: usize = 64 << 20;

fn requested_bytes(input: &str) -> Result<usize, Error> {
    // An empty input is accepted so the action can be invoked with no input at all.
    if input.trim().is_empty() {
        return Ok(DEFAULT_BYTES);
    }
    let value: Value = serde_json::from_str(input)
        .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
    match value.get("bytes") {
        None | Some(Value::Null) => Ok(DEFAULT_BYTES),
        Some(n) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                Error::InvalidInput("`bytes` must be a non-negative integer".to_string())
            }),
    }
}
