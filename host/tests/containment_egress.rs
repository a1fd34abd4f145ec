//! Egress containment end to end, with the real binaries: the socket flood and the
//! denied-request flood under `sluice run` (typed outcome, bounded sockets, bounded
//! host RSS, bounded report), loopback reached only through `--egress-allow-cidr`,
//! and a server whose tenants cannot reach its own API or write junk `allowedHosts`.

#[path = "../../runtime/tests/sockets/mod.rs"]
mod sockets;
mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sockets::sockets_to;
use support::{Server, deliver, webhook_url};

/// Host RSS a contained hostile guest may cost `sluice run` (the runtime, one
/// compiled guest and its instance need well under this).
const MAX_RSS: u64 = 400 << 20;

fn guest(name: &str) -> PathBuf {
    sluice_runtime::guest_build::example(name).unwrap_or_else(|err| panic!("{err}"))
}

/// Runs `sluice run <guest> args...`; returns the exit code and the report.
fn sluice_run(name: &str, args: &[&str]) -> (i32, Value, usize) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(guest(name))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("sluice run");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "no JSON report ({err}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (
        output.status.code().expect("exited normally"),
        report,
        output.stdout.len(),
    )
}

/// Samples `sockets_to(port)` until stopped; returns the highest count seen.
fn watch_sockets(port: u16) -> (Arc<AtomicBool>, std::thread::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&stop);
    let watcher = std::thread::spawn(move || {
        let mut most = 0;
        while !done.load(Ordering::SeqCst) {
            most = most.max(sockets_to(port));
            std::thread::sleep(Duration::from_millis(5));
        }
        most
    });
    (stop, watcher)
}

/// What `socket-flood` returned (its JSON output).
fn flood_result(report: &Value) -> Value {
    let text = report["outcome"]["result"]["value"]["data"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON output in {report}"));
    serde_json::from_str(text).expect("JSON output")
}

fn max_rss(report: &Value) -> u64 {
    report["host"]["maxRssBytes"]
        .as_u64()
        .expect("host.maxRssBytes")
}

#[test]
fn a_socket_flood_keeps_at_most_the_cap_of_sockets_open() {
    // Never accepts: every connection it gets hangs, so each one the host opened
    // would stay open until the execution ends.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rule = format!("http://127.0.0.1:{port}");
    let input = format!(r#"{{"url": "http://127.0.0.1:{port}/", "requests": 3000}}"#);

    let (stop, watcher) = watch_sockets(port);
    let (code, report, _) = sluice_run(
        "socket-flood",
        &[
            "--action",
            "run",
            "--input",
            &input,
            "--allow-host",
            &rule,
            "--egress-allow-cidr",
            "127.0.0.1/32",
            "--timeout-ms",
            "60000",
        ],
    );
    stop.store(true, Ordering::SeqCst);
    let most = watcher.join().unwrap();

    assert_eq!(code, 0, "{report}");
    assert_eq!(report["outcome"]["status"], "completed", "{report}");
    let result = flood_result(&report);
    assert!(result["pending"].as_u64().unwrap() <= 16, "{result}");
    assert!(
        result["errors"]["ErrorCode::ConnectionLimitReached"]
            .as_u64()
            .unwrap()
            >= 3000 - 16,
        "{result}"
    );
    assert!(most <= 16, "{most} sockets open at once");
    assert!(most > 0, "the flood never reached the listener");
    assert!(max_rss(&report) < MAX_RSS, "host RSS {}", max_rss(&report));
    assert_eq!(sockets_to(port), 0, "sockets outlived sluice run");
    drop(listener);
}

#[test]
fn loopback_is_reached_only_through_the_operator_flag() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let rule = format!("http://127.0.0.1:{port}");
    let input = format!(r#"{{"url": "http://127.0.0.1:{port}/", "requests": 50}}"#);
    let (stop, watcher) = watch_sockets(port);
    let (code, report, _) = sluice_run(
        "socket-flood",
        &["--action", "run", "--input", &input, "--allow-host", &rule],
    );
    stop.store(true, Ordering::SeqCst);
    assert_eq!(watcher.join().unwrap(), 0, "a socket reached loopback");
    assert_eq!(code, 0, "{report}");
    let result = flood_result(&report);
    assert_eq!(
        result["errors"]["ErrorCode::DestinationIpProhibited"], 50,
        "{result}"
    );
    assert_eq!(result["pending"], 0, "{result}");

    // The flag is checked like any option.
    let (code, _, _) = {
        let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("run")
            .arg(guest("socket-flood"))
            .args(["--action", "run", "--egress-allow-cidr", "127.0.0.1/40"])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&output.stderr).contains("--egress-allow-cidr"));
        (output.status.code().unwrap(), (), ())
    };
    assert_eq!(code, 64);
}

#[test]
fn a_denied_flood_costs_a_few_log_lines() {
    let (code, report, size) = sluice_run(
        "denied-flood",
        &[
            "--action",
            "run",
            "--input",
            r#"{"url": "http://denied.example/"}"#,
            "--timeout-ms",
            "3000",
            "--fuel",
            "1000000000000000",
        ],
    );
    assert_ne!(code, 0);
    assert_eq!(report["outcome"]["status"], "timeout", "{report}");
    let logs = report["logs"].as_array().expect("logs");
    assert!(logs.len() <= 4, "{} log lines", logs.len());
    let summary = logs
        .last()
        .and_then(|line| line["message"].as_str())
        .unwrap_or_default();
    assert!(
        summary.contains("more outbound requests denied"),
        "{summary}"
    );
    let denied: u64 = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(denied > 1000, "{summary}");
    assert!(size < 16 << 10, "a {size}-byte report");
    assert!(max_rss(&report) < MAX_RSS, "host RSS {}", max_rss(&report));
}

/// A server with default settings: a tenant's guest cannot reach the server's own
/// API on loopback even with an allow-list naming it, and junk rules are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_reach_loopback_or_write_junk_rules() {
    let server = Server::start_exactly(&[]);
    let client = server.tenant("Acme");
    let hits = Arc::new(AtomicUsize::new(0));
    let sink = {
        let hits = Arc::clone(&hits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                hits.fetch_add(1, Ordering::SeqCst);
            }
        });
        url
    };
    let instance = support::deploy_sink_relay(&client, &sink).await;
    let reply = deliver(
        &webhook_url(&instance, "relay"),
        &[],
        br#"{"n": 1}"#.to_vec(),
    )
    .await;
    let id = support::execution_id_of(&reply).expect("an execution id");
    let execution = client.finished_execution(&id).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    let customer = client.customer("Junk").await;
    let huge = format!("https://{}.example", "a".repeat(5000));
    for rule in [
        "https://*",
        "*://*:*",
        "http://2130706433",
        "http://0x7f000001",
        "http://0177.0.0.1",
        "http://127.1",
        "http://a b.example",
        "http://a\u{0}b.example",
        "http://a.example\n",
        "http://<script>",
        huge.as_str(),
    ] {
        let body = json!({
            "customerId": customer,
            "integration": "sink-relay",
            "config": {"Sink Url": "https://api.example/"},
            "allowedHosts": [rule],
        });
        let reply = client.post("/v1/instances", &body).await;
        assert!(
            reply.status == 400 || reply.status == 422,
            "{rule:?}: {}",
            reply.text
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("allowedHosts"), "{rule:?}: {message}");
        assert!(
            message.len() < 500,
            "{rule:?}: the error echoes {} bytes",
            message.len()
        );
        assert!(
            !message.contains('\n') && !message.contains('\0'),
            "{message:?}"
        );
    }
}
