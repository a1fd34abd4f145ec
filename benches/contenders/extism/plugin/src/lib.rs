//! The cold-start job as an Extism plug-in, the twin of `examples/hello`'s `echo`
//! action: write one log line (through Extism's `extism:host/env` log functions) and
//! return the JSON input unchanged.

use extism_pdk::{FnResult, info, plugin_fn};

#[plugin_fn]
pub fn echo(input: String) -> FnResult<String> {
    info!("echo {{\"bytes\":{}}}", input.len());
    Ok(input)
}
