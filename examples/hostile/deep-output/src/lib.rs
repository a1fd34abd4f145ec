//! `deep-output`: a hostile guest that returns a JSON document of nested arrays,
//! 1,000,000 deep unless the input says `{"depth": N}`. It parses with a
//! non-recursive parser but no reader can use it; the host must refuse it as
//! `invalid-output`, past the same depth `state.set` refuses.

use hostile_support::{Data, Error, Output};
use serde_json::Value;

hostile_support::hostile_connector!(
    key: "deep-output",
    description: "Returns a deeply nested JSON document.",
    run: run,
);

fn run(input: String) -> Result<Output, Error> {
    let depth = serde_json::from_str::<Value>(&input)
        .ok()
        .and_then(|input| input.get("depth").and_then(Value::as_u64))
        .and_then(|depth| usize::try_from(depth).ok())
        .unwrap_or(1_000_000);
    let mut json = String::with_capacity(depth * 2);
    json.extend(std::iter::repeat_n('[', depth));
    json.extend(std::iter::repeat_n(']', depth));
    Ok(Output {
        data: Data::Json(json),
        content_type: None,
        status: None,
        headers: Vec::new(),
        branch: None,
    })
}
