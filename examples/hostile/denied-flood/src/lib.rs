//! `denied-flood`: a hostile guest that sends requests to a host that is not on the
//! allow-list, in a loop, until the host stops it. It tests that refusals cost the
//! host almost nothing: a few warning lines and one summary ("N more outbound
//! requests denied") in the execution's log, within its log budget, instead of one
//! line per request.
//!
//! Input: `{"url": "http://denied.example/"}`.

use hostile_support::{Error, Output};
use sluice_sdk::component::wasi::http::outgoing_handler;
use sluice_sdk::component::wasi::http::types::{Fields, OutgoingRequest, Scheme};

hostile_support::hostile_connector!(
    key: "denied-flood",
    description: "Sends requests to a denied host until the host stops it.",
    run: run,
);

fn run(input: String) -> Result<Output, Error> {
    let url = input
        .split("\"url\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap_or("http://denied.example/");
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    loop {
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_scheme(Some(&if scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        }));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some(path));
        // The refusal comes back through the future; dropping it unread is the
        // cheapest way to ask again.
        drop(outgoing_handler::handle(request, None));
    }
}
