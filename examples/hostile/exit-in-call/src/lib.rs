//! `exit-in-call`: a hostile guest whose action calls `wasi:cli/exit` instead of
//! returning. The host must report a guest fault (a trap saying the guest exited),
//! not a host error.

use hostile_support::{Error, Output};

hostile_support::hostile_connector!(
    key: "exit-in-call",
    description: "Exits in the middle of its action.",
    run: run,
);

fn run(_input: String) -> Result<Output, Error> {
    std::process::exit(0);
}
