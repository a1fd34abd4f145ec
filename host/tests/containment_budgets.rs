//! Budgets outside the guest's linear memory, end to end: `sluice run` of each hostile
//! guest ends with its typed outcome and exit code while the process's own peak RSS
//! stays bounded, and on `sluice serve` the state quota holds (usage visible in the
//! API, the refusal reaches the guest, the database stops growing) and an upload that
//! exits during instantiation is refused with 422.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::*;

/// Peak RSS allowed to a `sluice run` of a hostile guest. The process itself (engine,
/// compiled guest, 64 MiB of linear memory at most, the report) stays far below; the
/// floods this guards against took 168 MB (empty log lines) to 8.3 GB (state).
const RSS_BOUND: u64 = 400 << 20;

fn sluice_run(guest: &str, input: &str) -> (i32, Value) {
    let path = sluice_runtime::guest_build::example(guest).unwrap_or_else(|err| panic!("{err}"));
    // Bounded like any hostile run on a shared machine: past this the test fails
    // instead of taking the machine's memory.
    let output: Output = Command::new("prlimit")
        .arg("--as=8589934592")
        .arg(BIN)
        .args(["run"])
        .arg(&path)
        .args(["--action", "run", "--input", input])
        .env_remove("RUST_LOG")
        .output()
        .expect("sluice run under prlimit");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "no report ({err}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let rss = report["host"]["maxRssBytes"].as_u64().expect("maxRssBytes");
    assert!(
        rss < RSS_BOUND,
        "{guest}: host peak RSS {rss} bytes (bound {RSS_BOUND}); outcome {}",
        report["outcome"]
    );
    (output.status.code().expect("exited normally"), report)
}

#[test]
fn run_empty_log_flood_ends_with_log_limit() {
    let (code, report) = sluice_run("empty-log-flood", "{}");
    assert_eq!(report["outcome"]["status"], "log-limit", "{report}");
    assert_eq!(code, 2);
    let records = report["logs"].as_array().expect("logs").len() as u64;
    let budget = sluice_runtime::Limits::default().log_bytes as u64;
    assert_eq!(
        records,
        budget / sluice_runtime::LOG_RECORD_OVERHEAD_BYTES,
        "records kept"
    );
}

#[test]
fn run_state_flood_stops_at_the_quota() {
    let (code, report) = sluice_run("state-flood", "{}");
    assert_eq!(report["outcome"]["status"], "guest-error", "{report}");
    let message = report["outcome"]["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("QuotaExceeded"), "{message}");
    assert_eq!(code, 1);
}

#[test]
fn run_exit_in_start_is_a_guest_fault() {
    let (code, report) = sluice_run("exit-in-start", "{}");
    assert_eq!(report["outcome"]["status"], "trap", "{report}");
    let message = report["outcome"]["message"].as_str().unwrap_or("");
    assert!(message.contains("exited with status 1"), "{message}");
    assert_eq!(code, 1, "a guest fault, not an internal error (70)");
}

#[test]
fn run_exit_in_call_is_a_guest_fault() {
    let (code, report) = sluice_run("exit-in-call", "{}");
    assert_eq!(report["outcome"]["status"], "trap", "{report}");
    assert_eq!(code, 1);
}

#[test]
fn run_deep_output_is_invalid() {
    let (code, report) = sluice_run("deep-output", "{}");
    assert_eq!(report["outcome"]["status"], "invalid-output", "{report}");
    assert_eq!(code, 1);
}

/// Bytes of the database and its write-ahead log.
fn database_bytes(data_dir: &Path) -> u64 {
    ["sluice.db", "sluice.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(data_dir.join(name)).ok())
        .map(|meta| meta.len())
        .sum()
}

const FLOOD_FLOW: &str = r#"
definitionVersion: 1
name: State flood
components:
  state-flood: {version: 1}
flows:
  - key: flood
    steps:
      - key: flood
        action: state-flood.run
        inputs: {}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_state_quota_holds_and_is_visible() {
    let quota: u64 = 8 << 20;
    let server = Server::start_with(&["--state-quota-instance-bytes", "8MiB"]);
    let client = server.tenant("Flooder");
    client.upload_example("state-flood").await;
    client.publish("state-flood", FLOOD_FLOW).await;
    let customer = client.customer("Flood customer").await;
    let instance = client
        .deploy_instance(&customer, "state-flood", json!({}))
        .await;
    let id = instance["id"].as_str().expect("id").to_string();
    let url = webhook_url(&instance, "flood");
    let before = database_bytes(server.data_dir.path());

    let usage = client
        .get(&format!("/v1/instances/{id}/state"))
        .await
        .expect(200)
        .body;
    assert_eq!(usage["usedBytes"], 0, "{usage}");
    assert_eq!(usage["quotaBytes"], quota, "{usage}");

    for round in 0..2 {
        let reply = deliver(&url, &[], b"{}".to_vec()).await.expect(202);
        let execution = execution_id_of(&reply).expect("an execution id");
        let finished = client.finished_execution(&execution).await;
        assert_eq!(finished["status"], "failed", "round {round}: {finished}");
        let text = finished.to_string();
        assert!(text.contains("QuotaExceeded"), "round {round}: {text}");
    }

    let usage = client
        .get(&format!("/v1/instances/{id}/state"))
        .await
        .expect(200)
        .body;
    let used = usage["usedBytes"].as_u64().expect("usedBytes");
    assert!(used <= quota, "{usage}");
    assert!(used > quota - (1 << 20), "the flood stopped early: {usage}");
    // Each value, with its key, is just under 1 MiB: eight fit in 8 MiB.
    assert_eq!(usage["usedKeys"], 8, "{usage}");
    assert_eq!(usage["tenant"]["usedBytes"], used, "{usage}");
    assert_eq!(usage["quotaKeys"], 10_000, "{usage}");

    // The database holds the quota's worth (the WAL may hold a second copy of the
    // pages until a checkpoint), not what the guest kept trying to write.
    let grown = database_bytes(server.data_dir.path()).saturating_sub(before);
    assert!(grown < 3 * quota, "the database grew by {grown} bytes");

    // Removing the instance frees its state for the tenant.
    client
        .delete(&format!("/v1/instances/{id}"))
        .await
        .expect(200);
    let again = client
        .deploy_instance(&customer, "state-flood", json!({}))
        .await;
    let usage = client
        .get(&format!(
            "/v1/instances/{}/state",
            again["id"].as_str().expect("id")
        ))
        .await
        .expect(200)
        .body;
    assert_eq!(usage["tenant"]["usedBytes"], 0, "{usage}");
    assert_eq!(usage["tenant"]["usedKeys"], 0, "{usage}");

    // Another tenant cannot read it.
    let other = server.tenant("Other");
    other
        .get(&format!("/v1/instances/{id}/state"))
        .await
        .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_whose_constructor_exits_is_refused_with_422() {
    let server = Server::start();
    let client = server.tenant("Uploader");
    let path =
        sluice_runtime::guest_build::example("exit-in-start").unwrap_or_else(|err| panic!("{err}"));
    let bytes = std::fs::read(path).expect("the built guest");
    let reply = client
        .post_bytes("/v1/components", "application/wasm", bytes)
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    let message = reply.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("exited with status 1"), "{message}");
    // Nothing was stored.
    let listed = client.get("/v1/components").await.expect(200).body;
    assert!(!listed.to_string().contains("exit-in-start"), "{listed}");
}
