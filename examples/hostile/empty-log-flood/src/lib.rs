//! `empty-log-flood`: a hostile guest that writes empty log lines in an endless loop.
//! Each record costs the host a row whatever its text, so the host charges every
//! record a fixed overhead: the execution must end with a log-limit outcome instead
//! of writing a million zero-byte lines.

use hostile_support::{Error, Output};
use sluice_sdk::component::sluice::flow::log;

hostile_support::hostile_connector!(
    key: "empty-log-flood",
    description: "Writes empty log lines until the host stops it.",
    run: run,
);

fn run(_input: String) -> Result<Output, Error> {
    loop {
        log::write(log::Level::Info, "", None);
    }
}
