//! `exit-in-start`: a hostile guest that calls `wasi:cli/exit` from a constructor.
//! Constructors (`.init_array`) run from the module's `_initialize`; a Rust
//! `wasm32-wasip2` library runs them at the start of its first export call (measured:
//! not while the component is instantiated), so even `manifest()` never returns. The
//! host must report a guest fault (a trap saying the guest exited), not a host error.
//! The constructor exists only in the wasm build: natively it would end the crate's
//! own test binary.

use hostile_support::{Error, Output};

hostile_support::hostile_connector!(
    key: "exit-in-start",
    description: "Exits from a constructor, before any export returns.",
    run: run,
);

#[cfg(target_arch = "wasm32")]
extern "C" fn exit_at_start() {
    std::process::exit(3);
}

// SAFETY: the entry is a plain `extern "C" fn()` with no arguments, which is what the
// `.init_array` section holds; it runs once, before any other code of the module.
#[cfg(target_arch = "wasm32")]
#[used]
#[unsafe(link_section = ".init_array")]
static EXIT_AT_START: extern "C" fn() = exit_at_start;

fn run(_input: String) -> Result<Output, Error> {
    Err(Error::Fatal("the constructor did not run".to_string()))
}
