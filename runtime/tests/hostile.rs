//! Each hostile guest ends with its own typed outcome, within its limit, and the same
//! runtime runs `hello` right after it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sluice_runtime::{Limits, Outcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_times_out_within_twice_its_deadline() {
    let runtime = runtime(4);
    let spin = load(&runtime, "spin");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let deadline = Duration::from_millis(300);
    let limits = Limits::default().fuel(u64::MAX / 2).timeout(deadline);
    let started = Instant::now();
    let report = run(&runtime, &spin, action("run", "{}"), &caps, &limits).await;
    let elapsed = started.elapsed();
    assert_eq!(report.outcome, Outcome::Timeout { limit_ms: 300 });
    assert!(elapsed >= deadline, "stopped early: {elapsed:?}");
    assert!(
        elapsed < deadline * 2,
        "took {elapsed:?} for a {deadline:?} deadline"
    );
    assert!(report.metering.fuel_used > 0);
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn infinite_loop_exhausts_fuel_exactly() {
    let runtime = runtime(4);
    let spin = load(&runtime, "spin");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let limits = Limits::default().fuel(5_000_000);
    let report = run(&runtime, &spin, action("run", "{}"), &caps, &limits).await;
    assert_eq!(report.outcome, Outcome::OutOfFuel { limit: 5_000_000 });
    assert_eq!(report.metering.fuel_used, 5_000_000);
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn memory_bomb_never_exceeds_its_cap() {
    let runtime = runtime(4);
    let bomb = load(&runtime, "memory-bomb");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let cap = 24u64 << 20;
    let limits = Limits::default().memory_bytes(cap);
    let report = run(&runtime, &bomb, action("run", "{}"), &caps, &limits).await;
    match report.outcome {
        Outcome::MemoryLimit { limit, requested } => {
            assert_eq!(limit, cap);
            assert!(requested > cap);
        }
        other => panic!("expected a memory limit, got {other:?}"),
    }
    assert!(
        report.metering.peak_memory_bytes <= cap,
        "peak {}",
        report.metering.peak_memory_bytes
    );
    assert!(
        report.metering.peak_memory_bytes > cap / 2,
        "the bomb barely grew"
    );
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn deep_recursion_traps_on_stack_overflow() {
    let runtime = runtime(4);
    let recursion = load(&runtime, "deep-recursion");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let report = run(
        &runtime,
        &recursion,
        action("run", "{}"),
        &caps,
        &Limits::default(),
    )
    .await;
    match &report.outcome {
        Outcome::Trap { message, .. } => assert!(message.contains("stack"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn log_flood_hits_the_log_limit() {
    let runtime = runtime(4);
    let flood = load(&runtime, "log-flood");
    let hello = load(&runtime, "hello");
    let (caps, logs) = capabilities();
    let limits = Limits::default().log_bytes(64 << 10);
    let report = run(&runtime, &flood, action("run", "{}"), &caps, &limits).await;
    assert_eq!(report.outcome, Outcome::LogLimit { limit: 64 << 10 });
    assert!(report.metering.log_bytes > 64 << 10);
    let kept: usize = logs
        .records()
        .iter()
        .map(|record| record.message.len())
        .sum();
    assert!(kept <= 64 << 10, "{kept} bytes of logs kept");
    // Each 1 KiB line also costs the fixed per-record overhead: 60 lines fit in 64 KiB.
    assert!(kept >= 60 << 10, "only {kept} bytes of logs kept");
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn huge_output_is_refused() {
    let runtime = runtime(4);
    let huge = load(&runtime, "huge-output");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let limits = Limits::default()
        .memory_bytes(128 << 20)
        .output_bytes(1 << 20);
    let report = run(
        &runtime,
        &huge,
        action("run", r#"{"bytes": 4194304}"#),
        &caps,
        &limits,
    )
    .await;
    assert_eq!(
        report.outcome,
        Outcome::OutputTooLarge {
            size: 4_194_306,
            limit: 1 << 20
        }
    );
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn host_call_loop_hits_the_host_call_limit() {
    let runtime = runtime(4);
    let looper = load(&runtime, "host-call-loop");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let limits = Limits::default().host_calls(10_000);
    let report = run(&runtime, &looper, action("run", "{}"), &caps, &limits).await;
    assert_eq!(report.outcome, Outcome::HostCallLimit { limit: 10_000 });
    assert_eq!(report.metering.host_calls, 10_001);
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_call_loop_times_out_without_a_call_limit() {
    let runtime = runtime(4);
    let looper = load(&runtime, "host-call-loop");
    let (caps, _) = capabilities();
    let deadline = Duration::from_millis(300);
    let limits = Limits::default()
        .host_calls(u64::MAX)
        .fuel(u64::MAX / 2)
        .timeout(deadline);
    let started = Instant::now();
    let report = run(&runtime, &looper, action("run", "{}"), &caps, &limits).await;
    assert_eq!(report.outcome, Outcome::Timeout { limit_ms: 300 });
    assert!(
        started.elapsed() < deadline * 2,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn initial_memory_over_budget_is_a_memory_limit() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let report = run(
        &runtime,
        &hello,
        action("echo", "{}"),
        &caps,
        &Limits::default().memory_bytes(64 << 10),
    )
    .await;
    match report.outcome {
        Outcome::MemoryLimit { limit, requested } => {
            assert_eq!(limit, 64 << 10);
            assert!(requested > 64 << 10);
        }
        other => panic!("expected a memory limit, got {other:?}"),
    }
    assert_eq!(report.metering.peak_memory_bytes, 0);
    assert_hello_works(&runtime, &hello).await;
}

/// `wasi:filesystem` and `wasi:sockets` are linked so that the JavaScript and Python
/// runtimes load, but nothing behind them answers: every file, directory, socket and
/// name lookup the guest tries fails, even towards a listener that is really there.
#[tokio::test]
async fn filesystem_and_sockets_are_linked_but_inert() {
    let runtime = runtime(4);
    let guest = load(&runtime, "inert-wasi");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let input = serde_json::json!({ "tcp": target }).to_string();
    let report = run(
        &runtime,
        &guest,
        action("run", &input),
        &caps,
        &Limits::default(),
    )
    .await;
    let attempts = json_output(&report);
    for key in [
        "tcp",
        "udp",
        "lookup",
        "passwd",
        "relative",
        "rootDir",
        "createFile",
    ] {
        let got = attempts[key].as_str().unwrap_or_default();
        assert!(got.starts_with("error: "), "{key}: {got} ({attempts})");
    }
    assert_eq!(attempts["env"], 0, "{attempts}");
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the guest's connection reached the listener"
    );
    assert_hello_works(&runtime, &hello).await;
}
