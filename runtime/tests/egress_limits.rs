//! Outbound caps through the real sandbox: a socket flood against a listener that
//! never answers keeps at most the per-execution (and per-tenant) cap in flight and
//! gets `connection-limit-reached` for the rest; its sockets are closed when the
//! execution ends; a flood of denied requests writes a few warnings and one summary
//! line, within the log budget.

mod common;
mod sockets;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sluice_runtime::{
    EgressPolicy, Limits, NetworkPolicy, OutboundLimits, Outcome, REFUSALS_LOGGED, Returned,
};
use sockets::sockets_to;

/// A listener that never accepts: connections complete in the kernel's backlog and
/// then hang, like a server that stopped answering.
fn silent_listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Waits (boundedly) until no client socket to `port` is left.
async fn wait_closed(port: u16) -> usize {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let open = sockets_to(port);
        if open == 0 || Instant::now() > until {
            return open;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn output(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Completed {
            result: Returned::Output(output),
        } => match &output.data {
            sluice_runtime::Data::Json(text) => serde_json::from_str(text).unwrap(),
            other => panic!("not JSON: {other:?}"),
        },
        other => panic!("expected a completed run, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_flood_holds_at_most_the_cap_and_its_sockets_close_at_the_end() {
    let runtime = runtime(2);
    let flood = load(&runtime, "socket-flood");
    let (_listener, port) = silent_listener();
    let (mut caps, logs) = capabilities();
    caps.egress = Arc::new(EgressPolicy::parse([format!("http://127.0.0.1:{port}")]).unwrap());
    let network = Arc::new(NetworkPolicy::new().allow_loopback());
    caps.network = Arc::clone(&network);
    let cap = OutboundLimits::default().per_execution;
    assert_eq!(sockets_to(port), 0);

    let input = format!(r#"{{"url": "http://127.0.0.1:{port}/", "requests": 400}}"#);
    let report = run(
        &runtime,
        &flood,
        action("run", &input),
        &caps,
        &Limits::default(),
    )
    .await;
    let result = output(&report.outcome);
    let pending = result["pending"].as_u64().unwrap();
    let limited = result["errors"]["ErrorCode::ConnectionLimitReached"]
        .as_u64()
        .unwrap_or(0);
    assert!(pending <= cap as u64, "{result}");
    assert!(pending > 0, "nothing reached the listener: {result}");
    assert!(limited >= 400 - cap as u64, "{result}");

    // The execution is over: its store is gone, and with it every connection task.
    assert_eq!(
        wait_closed(port).await,
        0,
        "sockets left open after the execution"
    );
    assert_eq!(network.in_flight("tenant-a"), 0);
    // The refusals were logged a few times, then summed up.
    let refusals: Vec<String> = logs
        .records()
        .into_iter()
        .map(|record| record.message)
        .filter(|message| message.contains("outbound"))
        .collect();
    assert_eq!(refusals.len(), REFUSALS_LOGGED as usize + 1, "{refusals:?}");
    assert!(
        refusals
            .last()
            .is_some_and(|last| last.contains("more outbound requests denied")),
        "{refusals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_cap_binds_below_the_execution_cap() {
    let runtime = runtime(2);
    let flood = load(&runtime, "socket-flood");
    let (_listener, port) = silent_listener();
    let (mut caps, _logs) = capabilities();
    caps.egress = Arc::new(EgressPolicy::parse([format!("http://127.0.0.1:{port}")]).unwrap());
    let network = Arc::new(
        NetworkPolicy::new()
            .allow_loopback()
            .with_limits(OutboundLimits {
                per_execution: 16,
                per_tenant: 5,
                ..OutboundLimits::default()
            }),
    );
    caps.network = Arc::clone(&network);
    let input = format!(r#"{{"url": "http://127.0.0.1:{port}/", "requests": 50}}"#);
    let report = run(
        &runtime,
        &flood,
        action("run", &input),
        &caps,
        &Limits::default(),
    )
    .await;
    let result = output(&report.outcome);
    assert!(result["pending"].as_u64().unwrap() <= 5, "{result}");
    assert!(
        result["errors"]["ErrorCode::ConnectionLimitReached"]
            .as_u64()
            .unwrap_or(0)
            >= 45,
        "{result}"
    );
    assert_eq!(wait_closed(port).await, 0);
    assert_eq!(network.in_flight("tenant-a"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_timeout_bounds_a_connection_that_never_completes() {
    // A non-routable documentation address, opened by the operator so that the
    // connect is really attempted: it can only end by the connect timeout.
    let runtime = runtime(2);
    let http = load(&runtime, "http");
    let (mut caps, _logs) = capabilities();
    caps.egress = Arc::new(EgressPolicy::parse(["http://192.0.2.1:81"]).unwrap());
    caps.network = Arc::new(
        NetworkPolicy::new()
            .allow_cidr("192.0.2.0/24")
            .unwrap()
            .with_limits(OutboundLimits {
                connect_timeout: Duration::from_millis(300),
                ..OutboundLimits::default()
            }),
    );
    let input = r#"{"method": "GET", "url": "http://192.0.2.1:81/"}"#;
    let limits = Limits::default().timeout(Duration::from_secs(20));
    let report = run(&runtime, &http, action("request", input), &caps, &limits).await;
    // Where the address is unroutable the connect fails at once; where packets are
    // dropped it hangs until the timeout. Either way the guest gets an error, long
    // before the execution's deadline.
    assert!(
        matches!(report.outcome, Outcome::GuestError { .. }),
        "{:?}",
        report.outcome
    );
    assert!(report.metering.wall_time < Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_flood_writes_a_few_lines_and_a_summary_within_the_log_budget() {
    let runtime = runtime(2);
    let flood = load(&runtime, "denied-flood");
    let (caps, logs) = capabilities();
    let limits = Limits::default()
        .timeout(Duration::from_secs(2))
        .fuel(u64::MAX / 2);
    let input = r#"{"url": "http://denied.example/"}"#;
    let report = run(&runtime, &flood, action("run", input), &caps, &limits).await;
    assert_eq!(report.outcome, Outcome::Timeout { limit_ms: 2000 });
    let records = logs.records();
    assert_eq!(records.len(), REFUSALS_LOGGED as usize + 1, "{records:?}");
    let summary = &records.last().unwrap().message;
    let denied: u64 = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {summary:?}"));
    assert!(denied > 1000, "{summary}");
    let bytes: usize = records.iter().map(|record| record.message.len()).sum();
    let overhead = sluice_runtime::LOG_RECORD_OVERHEAD_BYTES * records.len() as u64;
    assert_eq!(report.metering.log_bytes, bytes as u64 + overhead);

    // A budget smaller than one warning: the lines that do not fit are not written.
    let (caps, logs) = capabilities();
    let limits = limits.log_bytes(100);
    let report = run(&runtime, &flood, action("run", input), &caps, &limits).await;
    assert_eq!(report.outcome, Outcome::Timeout { limit_ms: 2000 });
    assert!(logs.records().is_empty(), "{:?}", logs.records());
    // The refused line stays charged: the metering shows the budget was passed.
    assert!(report.metering.log_bytes > 100);
}
