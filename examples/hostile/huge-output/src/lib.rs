//! `huge-output`: a hostile guest that returns an arbitrarily large output: input
//! `{"bytes": N}` (default 64 MiB) yields a JSON string whose content is N bytes of
//! `a` (N + 2 bytes of JSON with the quotes). It tests the host's output size limit.

use hostile_support::{Data, Error, Output};
use serde_json::Value;

hostile_support::hostile_connector!(
    key: "huge-output",
    description: "Returns an output of the requested size.",
    run: run,
);

fn run(input: String) -> Result<Output, Error> {
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
