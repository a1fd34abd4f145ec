//! Poison executions (issue 10, finding 3): a real `sluice serve` is killed with
//! SIGKILL while an execution is running, again and again. The execution is queued
//! again after each crash, with its attempt kept and its crash requeues counted, at
//! most `--max-crash-requeues` times; the next crash fails it with `host-crash-loop`
//! and the server comes up and stays up. A single crash still completes it.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Client, Server, deliver, deploy_sink_relay, execution_id_of, webhook_path};

/// How long waiting for something the server should do soon may take before the
/// test gives up (only reached when something is broken).
const PATIENCE: Duration = Duration::from_secs(90);

/// A loopback service the relay flow posts to. While `hold` is set it never answers
/// (the execution stays running, as if a step were slow); otherwise it answers at
/// once. It counts the deliveries of each execution.
struct HoldingSink {
    url: String,
    hold: Arc<AtomicBool>,
    deliveries: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HoldingSink {
    async fn start() -> HoldingSink {
        let hold = Arc::new(AtomicBool::new(true));
        let deliveries = Arc::new(Mutex::new(HashMap::new()));
        let (held, counted) = (Arc::clone(&hold), Arc::clone(&deliveries));
        let router = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (held, counted) = (Arc::clone(&held), Arc::clone(&counted));
                async move {
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let id = body["executionId"].as_str().unwrap_or("").to_string();
                    *counted.lock().expect("sink lock").entry(id).or_default() += 1;
                    while held.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    axum::Json(json!({"ok": true}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the sink");
        let addr = listener.local_addr().expect("the sink's address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        HoldingSink {
            url: format!("http://{addr}"),
            hold,
            deliveries,
            task,
        }
    }

    fn deliveries(&self, execution: &str) -> usize {
        self.deliveries
            .lock()
            .expect("sink lock")
            .get(execution)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `execution` has reached the sink `count` times.
    async fn wait_for(&self, execution: &str, count: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.deliveries(execution) < count {
            assert!(
                Instant::now() < deadline,
                "execution {execution} reached the sink {} times, not {count}",
                self.deliveries(execution)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for HoldingSink {
    fn drop(&mut self) {
        self.hold.store(false, Ordering::SeqCst);
        self.task.abort();
    }
}

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

    sink.hold.store(false, Ordering::SeqCst);
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
