//! Poison executions (issue 10, finding 3): a real `sluice serve` is killed with
//! SIGKILL while an execution is running, again and again. The execution is queued
//! again after each crash, with its attempt kept and its crash requeues counted, at
//! most `--max-crash-requeues` times; the next crash fails it with `host-crash-loop`
//! and the server comes up and stays up. A single crash still completes it.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::holding_sink::HoldingSink;
use support::{Client, Server, deliver, deploy_sink_relay, execution_id_of, webhook_path};

/// How long waiting for something the server should do soon may take before the
/// test gives up (only reached when something is broken).
const PATIENCE: Duration = Duration::from_secs(90);

/// Deploys the relay flow against `sink` and sends it one webhook; returns the
/// execution id.
async fn one_running_execution(server: &Server, client: &Client, sink: &HoldingSink) -> String {
    let instance = deploy_sink_relay(client, &sink.url).await;
    let url = format!("{}{}", server.url, webhook_path(&instance, "relay"));
    let reply = deliver(
        &url,
        &[],
        serde_json::to_vec(&json!({"n": 1})).expect("JSON"),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let id = execution_id_of(&reply).expect("an execution id");
    // Running, and held in its HTTP step.
    sink.wait_for(&id, 1).await;
    id
}

async fn execution(client: &Client, id: &str) -> Value {
    client
        .get(&format!("/v1/executions/{id}"))
        .await
        .expect(200)
        .body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_that_is_running_at_every_crash_fails_with_host_crash_loop() {
    const CAP: usize = 2;
    let sink = HoldingSink::start().await;
    let mut server = Server::start_with(&[
        "--webhook-rate-limit",
        "0",
        "--max-crash-requeues",
        "2",
        "--crash-backoff-ms",
        "200",
    ]);
    let mut client = server.tenant("Acme");
    let id = one_running_execution(&server, &client, &sink).await;

    // Each crash while it runs: queued again (after its backoff), run again, its
    // attempt kept and one more crash requeue counted.
    for crashes in 1..=CAP {
        server.restart();
        client.base = server.url.clone();
        sink.wait_for(&id, 1 + crashes).await;
        let shown = execution(&client, &id).await;
        assert_eq!(shown["status"], "running", "{shown}");
        assert_eq!(shown["attempt"], 1, "{shown}");
        assert_eq!(shown["crashRequeues"], crashes, "{shown}");
    }

    // One crash more than the cap: failed as a crash loop when the server starts, not
    // run again, and the server is up.
    server.restart();
    client.base = server.url.clone();
    let shown = execution(&client, &id).await;
    assert_eq!(shown["status"], "failed", "{shown}");
    assert!(
        shown["error"]
            .as_str()
            .is_some_and(|error| error.starts_with("host-crash-loop:")),
        "{shown}"
    );
    assert_eq!(
        shown["record"]["error"]["kind"], "host-crash-loop",
        "{shown}"
    );
    assert_eq!(shown["crashRequeues"], CAP, "{shown}");
    assert_eq!(shown["attempt"], 1, "{shown}");
    assert!(shown["finishedAt"].is_string(), "{shown}");
    // Longer than any backoff it could have had: it did not run again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        sink.deliveries(&id),
        1 + CAP,
        "runs of the poisoned execution"
    );
    assert_eq!(execution(&client, &id).await["status"], "failed");
    let health = reqwest::get(format!("{}/v1/health", server.url))
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
    // Listed among the failures like any other.
    let failed = client
        .all_executions("status=failed")
        .await
        .into_iter()
        .filter(|execution| execution["id"] == id.as_str())
        .count();
    assert_eq!(failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_interrupted_by_one_crash_still_completes() {
    let sink = HoldingSink::start().await;
    let mut server =
        Server::start_with(&["--webhook-rate-limit", "0", "--crash-backoff-ms", "200"]);
    let mut client = server.tenant("Acme");
    let id = one_running_execution(&server, &client, &sink).await;

    sink.release();
    server.restart();
    client.base = server.url.clone();
    let deadline = Instant::now() + PATIENCE;
    let finished = loop {
        let shown = execution(&client, &id).await;
        if shown["status"] != "queued" && shown["status"] != "running" {
            break shown;
        }
        assert!(Instant::now() < deadline, "not finished: {shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(finished["attempt"], 1, "{finished}");
    assert_eq!(finished["crashRequeues"], 1, "{finished}");
    assert_eq!(sink.deliveries(&id), 2);
}
