//! `socket-flood`: a hostile guest that opens as many outgoing HTTP requests as it can
//! to one allowed host (a listener that never answers, in the tests) and keeps every
//! pending one open. It tests the host's cap on requests in flight per execution: the
//! host must refuse the excess at once (`connection-limit-reached`) instead of opening
//! a socket for each, and must close the sockets when the execution ends.
//!
//! Input: `{"url": "http://host:port/", "requests": N}`. Output: how many requests
//! were sent, how many were still pending at the end, and the error codes of the rest.

use std::collections::BTreeMap;

use hostile_support::{Data, Error, Output};
use sluice_sdk::component::wasi::clocks::monotonic_clock;
use sluice_sdk::component::wasi::http::outgoing_handler;
use sluice_sdk::component::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, OutgoingRequest, Scheme,
};
use sluice_sdk::component::wasi::io::poll;

hostile_support::hostile_connector!(
    key: "socket-flood",
    description: "Opens outgoing requests to one host until it has sent N.",
    run: run,
);

/// How long each new request may take to resolve before the next is sent: long
/// enough for a refusal to arrive, short enough to send thousands.
const SETTLE_NS: u64 = 2_000_000;
/// How long the refusals still on their way may take once every request is sent.
const FINAL_SETTLE_NS: u64 = 500_000_000;

fn field<'a>(input: &'a str, name: &str) -> Option<&'a str> {
    let start = input.find(&format!("\"{name}\""))? + name.len() + 2;
    let rest = input[start..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(text) = rest.strip_prefix('"') {
        text.split('"').next()
    } else {
        rest.split([',', '}']).next().map(str::trim)
    }
}

fn run(input: String) -> Result<Output, Error> {
    let url = field(&input, "url").ok_or_else(|| Error::Fatal("`url` is required".into()))?;
    let requests: u32 = field(&input, "requests")
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::Fatal("`url` must be absolute".into()))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };

    let mut pending: Vec<FutureIncomingResponse> = Vec::new();
    let mut errors: BTreeMap<String, u32> = BTreeMap::new();
    let mut responses = 0u32;
    for _ in 0..requests {
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_scheme(Some(&if scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        }));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some(path));
        match outgoing_handler::handle(request, None) {
            Ok(future) => {
                let timer = monotonic_clock::subscribe_duration(SETTLE_NS);
                let ready = future.subscribe();
                poll::poll(&[&ready, &timer]);
                drop(ready);
                pending.push(future);
            }
            Err(code) => *errors.entry(name(&code)).or_default() += 1,
        }
        sweep(&mut pending, &mut errors, &mut responses);
    }
    // Give the last refusals time to arrive; what is still pending then is really in
    // flight (a connection the host holds open).
    let deadline = monotonic_clock::now() + FINAL_SETTLE_NS;
    while !pending.is_empty() && monotonic_clock::now() < deadline {
        let timer = monotonic_clock::subscribe_instant(deadline);
        let pollables: Vec<_> = pending.iter().map(|future| future.subscribe()).collect();
        let mut all: Vec<&poll::Pollable> = pollables.iter().collect();
        all.push(&timer);
        poll::poll(&all);
        drop(all);
        drop(pollables);
        sweep(&mut pending, &mut errors, &mut responses);
    }
    let errors = errors
        .iter()
        .map(|(code, count)| format!("\"{code}\":{count}"))
        .collect::<Vec<_>>()
        .join(",");
    let json = format!(
        "{{\"sent\":{requests},\"pending\":{},\"responses\":{responses},\"errors\":{{{errors}}}}}",
        pending.len()
    );
    Ok(Output {
        data: Data::Json(json),
        content_type: None,
        status: None,
        headers: Vec::new(),
        branch: None,
    })
}

/// Keeps only the requests still in flight; counts how the others ended.
fn sweep(
    pending: &mut Vec<FutureIncomingResponse>,
    errors: &mut BTreeMap<String, u32>,
    responses: &mut u32,
) {
    pending.retain(|future| match future.get() {
        None => true,
        Some(Ok(Ok(_response))) => {
            *responses += 1;
            false
        }
        Some(Ok(Err(code))) => {
            *errors.entry(name(&code)).or_default() += 1;
            false
        }
        Some(Err(())) => false,
    });
}

/// The error code as its Debug text names it, e.g. `ErrorCode::ConnectionLimitReached`.
fn name(code: &ErrorCode) -> String {
    let debug = format!("{code:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or("")
        .to_string()
}
