//! Host memory held on a guest's behalf through `wasi:http` resources counts against
//! its memory budget: the body and fields bombs end with `memory-limit`, what the host
//! holds shows in the peak memory, the handle cap ends a guest that hoards handles,
//! and a connector sending hundreds of requests one after another is unaffected.

mod common;

use std::sync::Arc;

use common::*;
use sluice_runtime::{EgressPolicy, Limits, Outcome};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const BUDGET: u64 = 64 << 20;

fn assert_memory_limit(outcome: &Outcome, peak: u64) {
    match outcome {
        Outcome::MemoryLimit { limit, requested } => {
            assert_eq!(*limit, BUDGET);
            assert!(*requested > BUDGET, "requested {requested}");
        }
        other => panic!("expected a memory limit, got {other:?}"),
    }
    assert!(peak <= BUDGET, "peak {peak}");
    // The guest's own linear memory is a megabyte or two: the rest is host memory.
    assert!(peak > BUDGET / 2, "peak {peak}: host memory is not counted");
}

#[tokio::test]
async fn body_bomb_ends_with_memory_limit() {
    let runtime = runtime(4);
    let bomb = load(&runtime, "body-bomb");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let limits = Limits::default().memory_bytes(BUDGET);
    // Uncharged, the guest would stop by itself after buffering 512 MiB and complete.
    let report = run(
        &runtime,
        &bomb,
        action("run", r#"{"mib": 512}"#),
        &caps,
        &limits,
    )
    .await;
    assert_memory_limit(&report.outcome, report.metering.peak_memory_bytes);
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn fields_bomb_ends_with_memory_limit() {
    let runtime = runtime(4);
    let bomb = load(&runtime, "fields-bomb");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let limits = Limits::default().memory_bytes(BUDGET);
    let report = run(
        &runtime,
        &bomb,
        action("run", r#"{"mib": 512}"#),
        &caps,
        &limits,
    )
    .await;
    assert_memory_limit(&report.outcome, report.metering.peak_memory_bytes);
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn peak_memory_includes_the_headers_the_host_holds() {
    let runtime = runtime(4);
    let bomb = load(&runtime, "fields-bomb");
    let (caps, _) = capabilities();
    let limits = Limits::default().memory_bytes(BUDGET);
    // 16 MiB of header values, held until the guest returns.
    let report = run(
        &runtime,
        &bomb,
        action("run", r#"{"mib": 16}"#),
        &caps,
        &limits,
    )
    .await;
    let output = json_output(&report);
    let held = output["bytes"].as_u64().expect("bytes held");
    assert!(held >= 16 << 20, "{output}");
    let peak = report.metering.peak_memory_bytes;
    assert!(peak > 16 << 20, "peak {peak} leaves out the headers");
    assert!(peak < 24 << 20, "peak {peak} overcounts 16 MiB of headers");
}

#[tokio::test]
async fn hoarding_handles_ends_at_the_handle_cap() {
    let runtime = runtime(4);
    let bomb = load(&runtime, "fields-bomb");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let limits = Limits::default().memory_bytes(BUDGET);
    // Tiny fields: 4 bytes of values each, so 1 MiB would take 262,144 of them.
    let report = run(
        &runtime,
        &bomb,
        action("run", r#"{"mib": 1, "valueBytes": 1}"#),
        &caps,
        &limits,
    )
    .await;
    match &report.outcome {
        Outcome::Trap { message, .. } => {
            assert!(message.contains("handle limit of 4096"), "{message}")
        }
        other => panic!("expected the handle cap to stop the guest, got {other:?}"),
    }
    assert_hello_works(&runtime, &hello).await;
}

/// Answers every request with `200 ok` after reading it whole (head and body).
async fn serve_http() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = vec![0u8; 64 << 10];
                loop {
                    let read = socket.read(&mut chunk).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|value| value.trim().parse().ok())
                        .unwrap_or(0);
                    if buffer.len() >= end + 4 + length {
                        break;
                    }
                }
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn sequential_requests_release_what_they_held() {
    let runtime = runtime(4);
    let guest = load(&runtime, "body-bomb");
    let port = serve_http().await;
    let (mut caps, _) = capabilities();
    caps.egress = Arc::new(EgressPolicy::parse([format!("http://127.0.0.1:{port}")]).unwrap());
    // The server is on loopback, which only the operator can open.
    caps.network = Arc::new(sluice_runtime::NetworkPolicy::new().allow_loopback());
    // 300 requests of 100 KiB bodies and 4 KiB headers; were nothing released, their
    // charges alone (over 40 MiB) would not fit in 16 MiB.
    let budget = 16 << 20;
    let limits = Limits::default().memory_bytes(budget);
    let input = format!(r#"{{"sendTo": "http://127.0.0.1:{port}", "requests": 300}}"#);
    let report = run(&runtime, &guest, action("run", &input), &caps, &limits).await;
    let output = json_output(&report);
    assert_eq!(output["requests"], 300, "{output}");
    assert_eq!(output["received"], 600, "{output}");
    assert!(report.metering.peak_memory_bytes <= budget);
}
