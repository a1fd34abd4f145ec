//! `log-flood`: a hostile guest that writes 1 KiB log lines in an endless loop. It
//! tests the host's per-execution log volume limit (the execution must end with a
//! log-limit outcome instead of filling the log store).

use hostile_support::{Error, Output};
use sluice_sdk::component::sluice::flow::log;

hostile_support::hostile_connector!(
    key: "log-flood",
    description: "Writes log lines until the host stops it.",
    run: run,
);

fn run(_input: String) -> Result<Output, Error> {
    let message = "x".repeat(1024);
    loop {
        log::write(log::Level::Info, &message, None);
    }
}
