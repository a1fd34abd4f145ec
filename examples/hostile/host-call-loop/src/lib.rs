//! `host-call-loop`: a hostile guest that calls `context::current()` in a tight endless
//! loop. Unlike `spin` it spends most of its time in the host, so it tests that the
//! host's budgets also stop a guest that keeps crossing into host code.

use hostile_support::{Error, Output};
use sluice_sdk::component::sluice::flow::context;
use std::hint::black_box;

hostile_support::hostile_connector!(
    key: "host-call-loop",
    description: "Calls the host in an endless loop.",
    run: run,
);

fn run(_input: String) -> Result<Output, Error> {
    loop {
        black_box(context::current());
    }
}
