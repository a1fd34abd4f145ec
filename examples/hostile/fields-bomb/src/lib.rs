//! `fields-bomb`: a hostile guest that makes the host hold header fields it never
//! uses. In a loop it creates a `fields` resource with about 120 KiB of headers (just
//! under wasi-http's per-fields limit) and leaks it. Input `{"mib": N}` (default 2048;
//! 4096 MiB would wrap the guest's 32-bit `usize` to 0)
//! stops it once N MiB are held and returns normally, still holding them (a small N
//! shows them in the peak memory); `{"valueBytes": B}` makes each header value B bytes
//! instead of 30 KiB (tiny values fill the handle table before the budget). It tests that host memory held for a guest counts
//! against its memory budget and shows in its peak memory.

use hostile_support::{Data, Error, Output};
use sluice_sdk::component::wasi::http::types as http;

hostile_support::hostile_connector!(
    key: "fields-bomb",
    description: "Leaks header fields of about 120 KiB each.",
    run: run,
);

/// Four headers of 30 KiB: one big value per header keeps each call cheap.
const HEADERS: usize = 4;
const VALUE_BYTES: usize = 30 << 10;

fn run(input: String) -> Result<Output, Error> {
    let limit = hostile_support::requested(&input, "mib", 2048)?.saturating_mul(1 << 20);
    let value_bytes = hostile_support::requested(&input, "valueBytes", VALUE_BYTES)?.max(1);
    let value = vec![b'v'; value_bytes];
    let mut held = 0usize;
    let mut leaked = Vec::new();
    while held < limit {
        let fields = http::Fields::new();
        for i in 0..HEADERS {
            fields
                .append(&format!("x-bomb-{i}"), &value)
                .map_err(|e| Error::Fatal(format!("append refused: {e:?}")))?;
        }
        held += HEADERS * value_bytes;
        // Kept alive until the guest returns: the host holds every one of them.
        leaked.push(fields);
    }
    let count = leaked.len();
    std::mem::forget(leaked);
    Ok(Output {
        data: Data::Json(format!(r#"{{"fields":{count},"bytes":{held}}}"#)),
        content_type: None,
        status: None,
        headers: Vec::new(),
        branch: None,
    })
}
