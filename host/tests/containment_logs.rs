//! Server-side logs (issue 10, finding 4, the server half): a guest that writes log
//! lines as fast as it can, through a real `sluice serve`. Its execution still ends
//! stored (not left running), its stored logs stop at the server's cap with one line
//! counting the dropped ones, the record repeats no more than that, and the server's
//! peak memory stays bounded.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, deliver, execution_id_of, webhook_url};

/// The stored-log cap the server is started with.
const MAX_RECORDS: usize = 1_000;

/// The server's peak resident memory (`VmHWM` in `/proc/<pid>/status`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_ends_stored_with_bounded_logs_and_memory() {
    let server = Server::start_with(&[
        "--webhook-rate-limit",
        "0",
        "--max-execution-log-records",
        "1000",
    ]);
    let client = server.tenant("Acme");
    client.upload_example("empty-log-flood").await;
    client
        .publish(
            "empty-log-flood",
            r#"
definitionVersion: 1
name: Line flood
components:
  empty-log-flood: {version: 1}
flows:
  - key: flood
    steps:
      - key: flood
        action: empty-log-flood.run
        inputs: {}
"#,
        )
        .await;
    let customer = client.customer("Flooded").await;
    let instance = client
        .deploy_instance(&customer, "empty-log-flood", json!({}))
        .await;
    let before = peak_rss(server.pid());

    let reply = deliver(&webhook_url(&instance, "flood"), &[], b"{}".to_vec()).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let id = execution_id_of(&reply).expect("an execution id");
    let deadline = Instant::now() + Duration::from_secs(180);
    let execution = loop {
        let shown = client
            .get(&format!("/v1/executions/{id}"))
            .await
            .expect(200)
            .body;
        if shown["status"] != "queued" && shown["status"] != "running" {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "still not stored as ended: {}",
            shown["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Stopped by a runtime limit (which one is the runtime's business), and stored.
    assert_eq!(execution["status"], "failed", "{}", execution["error"]);
    assert!(execution["finishedAt"].is_string());

    // The stored logs: the cap, then one line counting the rest.
    let mut lines: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let page = client
            .get(&format!(
                "/v1/executions/{id}/logs?limit=1000&after={after}"
            ))
            .await
            .expect(200)
            .body;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        lines.extend(items);
        match page["nextAfter"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
        assert!(lines.len() <= 10 * MAX_RECORDS, "unbounded logs stored");
    }
    assert_eq!(lines.len(), MAX_RECORDS + 1, "stored log lines");
    let last = &lines[MAX_RECORDS];
    let dropped: u64 = last["message"]
        .as_str()
        .and_then(|message| message.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("not a count of dropped records: {last}"));
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|message| message.contains("log records dropped")),
        "{last}"
    );
    assert!(dropped > 0, "{last}");
    assert_eq!(last["level"], "warn");

    // The record repeats at most as many.
    let in_record: usize = execution["record"]["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|step| step["logs"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    assert!(
        in_record <= MAX_RECORDS + 1,
        "{in_record} log lines in the record"
    );

    let peak = peak_rss(server.pid());
    println!(
        "log flood: {} stored lines, {dropped} dropped, server peak RSS {} MiB (before the flood {} MiB)",
        lines.len(),
        peak >> 20,
        before >> 20
    );
    assert!(
        peak < before + (512 << 20),
        "server peak RSS grew from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );
    assert_eq!(
        reqwest::get(format!("{}/v1/health", server.url))
            .await
            .expect("health")
            .status()
            .as_u16(),
        200
    );
}
