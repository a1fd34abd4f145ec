//! `line-flood`: a hostile guest that writes empty log lines in an endless loop. Each
//! line is tiny, so a budget counted in message bytes alone lets through as many as
//! the host-call limit allows (a million); it tests that the server stores a run's
//! logs bounded, and still stores the run.

use hostile_support::{Error, Output};
use sluice_sdk::component::sluice::flow::log;

hostile_support::hostile_connector!(
    key: "line-flood",
    description: "Writes empty log lines until the host stops it.",
    run: run,
);

fn run(_input: String) -> Result<Output, Error> {
    loop {
        log::write(log::Level::Warn, "", None);
    }
}
