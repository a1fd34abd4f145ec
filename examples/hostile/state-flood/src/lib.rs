//! `state-flood`: a hostile guest that stores values of about 1 MiB under new keys
//! until the host refuses. Input (all optional): `{"scope": "instance" | "flow" |
//! "execution" | "integration", "valueBytes": N, "keepGoing": bool}`. It stops at the
//! first refusal and returns it as a fatal error naming the key count, unless
//! `keepGoing` is set, in which case it ignores refusals and keeps writing until a
//! budget stops it. It tests the host's state quota.

use hostile_support::{Error, Output};
use serde_json::Value;
use sluice_sdk::component::sluice::flow::state;

hostile_support::hostile_connector!(
    key: "state-flood",
    description: "Stores 1 MiB values under new keys until the host refuses.",
    run: run,
);

/// Just under the host's 1 MiB value limit once quoted.
const DEFAULT_VALUE_BYTES: usize = (1 << 20) - 64;

fn run(input: String) -> Result<Output, Error> {
    let input: Value = if input.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?
    };
    let scope = match input.get("scope").and_then(Value::as_str) {
        None | Some("instance") => state::Scope::Instance,
        Some("flow") => state::Scope::Flow,
        Some("execution") => state::Scope::Execution,
        Some("integration") => state::Scope::Integration,
        Some(other) => return Err(Error::InvalidInput(format!("unknown scope `{other}`"))),
    };
    let value_bytes = input
        .get("valueBytes")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(DEFAULT_VALUE_BYTES);
    let keep_going = input.get("keepGoing").and_then(Value::as_bool) == Some(true);
    let value = format!("\"{}\"", "a".repeat(value_bytes));
    let mut written: u64 = 0;
    loop {
        let key = format!("flood-{written}");
        match state::set(scope, &key, &value) {
            Ok(()) => written += 1,
            Err(_) if keep_going => {}
            Err(err) => {
                return Err(Error::Fatal(format!(
                    "state.set refused after {written} keys: {err:?}"
                )));
            }
        }
    }
}
