//! `exit-in-start`: a hostile guest that calls `wasi:cli/exit` from a constructor.
//! Constructors (`.init_array`) run from the module's `_initialize`, which the
//! component runs while it is instantiated, before any export is called: the host
//! must report a guest fault (a trap saying the guest exited during instantiation),
//! not a host error.

use hostile_support::{Error, Output};

hostile_support::hostile_connector!(
    key: "exit-in-start",
    description: "Exits while it is being instantiated.",
    run: run,
);

extern "C" fn exit_at_start() {
    std::process::exit(3);
}

// SAFETY: the entry is a plain `extern "C" fn()` with no arguments, which is what the
// `.init_array` section holds; it runs once, before any other code of the module.
#[used]
#[unsafe(link_section = ".init_array")]
static EXIT_AT_START: extern "C" fn() = exit_at_start;

fn run(_input: String) -> Result<Output, Error> {
    Err(Error::Fatal(
        "the constructor did not run at instantiation".to_string(),
    ))
}
