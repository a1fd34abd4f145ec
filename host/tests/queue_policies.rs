//! The queue's policies against a real `sluice serve` with time compressed through
//! its settings (`--minute-ms`), not by mocking the queue: flow retries back off and
//! stop, a newer request id cancels pending retries, FIFO order holds under
//! concurrent senders, a retrying FIFO head blocks the queue, dedupe ids drop
//! repeats within the window, the flow time limit ends a slow execution, and
//! removing an instance discards its queue.
//!
//! Every flow POSTs its trigger body to a loopback sink that can fail the first
//! requests of a key and delay its answers, and records what reached it.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Client, Server, deliver, webhook_path};

/// "A minute" for this server: retry delays are multiples of it, the dedupe window
/// is ten of them.
const MINUTE_MS: u64 = 250;

/// What reached the sink.
#[derive(Debug, Clone)]
struct Hit {
    body: Value,
    at: Instant,
    /// Whether the sink answered with an error.
    failed: bool,
}

#[derive(Default)]
struct SinkState {
    hits: Vec<Hit>,
    /// Requests answered so far, per `key` of the body.
    seen: HashMap<String, u64>,
    in_flight: usize,
    max_in_flight: HashMap<String, usize>,
}

/// A loopback service: `POST /?fail=N&delay=MS` answers 503 to the first N requests
/// whose body has the same `key`, after MS milliseconds.
struct Sink {
    url: String,
    state: Arc<Mutex<SinkState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    async fn start() -> Sink {
        let state = Arc::new(Mutex::new(SinkState::default()));
        let shared = Arc::clone(&state);
        let router = axum::Router::new().route(
            "/",
            axum::routing::post(
                move |axum::extract::Query(query): axum::extract::Query<
                    HashMap<String, String>,
                >,
                      body: axum::body::Bytes| {
                    let state = Arc::clone(&shared);
                    async move {
                        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let key = body["key"].as_str().unwrap_or("").to_string();
                        let fail: u64 = query.get("fail").and_then(|v| v.parse().ok()).unwrap_or(0);
                        let delay: u64 =
                            query.get("delay").and_then(|v| v.parse().ok()).unwrap_or(0);
                        let failed = {
                            let mut state = state.lock().unwrap();
                            let seen = state.seen.entry(key.clone()).or_default();
                            *seen += 1;
                            let failed = *seen <= fail;
                            state.in_flight += 1;
                            let in_flight = state.in_flight;
                            let max = state.max_in_flight.entry(key).or_default();
                            *max = (*max).max(in_flight);
                            state.hits.push(Hit {
                                body,
                                at: Instant::now(),
                                failed,
                            });
                            failed
                        };
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        state.lock().unwrap().in_flight -= 1;
                        if failed {
                            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "try later")
                        } else {
                            (axum::http::StatusCode::OK, "ok")
                        }
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Sink {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    /// The hits whose body has `key`, in arrival order.
    fn hits(&self, key: &str) -> Vec<Hit> {
        let state = self.state.lock().unwrap();
        state
            .hits
            .iter()
            .filter(|hit| hit.body["key"] == key)
            .cloned()
            .collect()
    }

    /// How many requests of `key` the sink ever had at once: any other key counts too,
    /// so run the keys checked this way alone.
    fn max_in_flight(&self, key: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.max_in_flight.get(key).copied().unwrap_or(0)
    }
}

const STEP: &str = r#"
      - key: post
        action: http.request
        inputs:
          method: POST
          url: {type: configVar, value: Sink Url}
          query:
            type: complex
            value:
              fail: {type: reference, value: trigger.results.body.fail}
              delay: {type: reference, value: trigger.results.body.delay}
          json: {type: reference, value: trigger.results.body}
          timeoutMs: 30000
          failOnError: true
"#;

fn definition() -> String {
    format!(
        r#"
definitionVersion: 1
name: Queue policies
components:
  http: {{version: 1}}
configVars:
  - key: Sink Url
flows:
  - key: retrying
    retry: {{attempts: 3, delayMinutes: 1, exponential: true}}
    steps:{STEP}
  - key: cancellable
    retry: {{attempts: 2, delayMinutes: 8, uniqueRequestId: body.requestId}}
    steps:{STEP}
  - key: ordered
    queue: {{fifo: true, dedupeId: body.id}}
    retry: {{attempts: 3, delayMinutes: 1}}
    steps:{STEP}
  - key: limited
    timeLimitSeconds: 1
    steps:{STEP}
"#
    )
}

struct Setup {
    server: Server,
    client: Client,
    sink: Sink,
    instance: Value,
}

async fn setup() -> Setup {
    setup_with(&[]).await
}

async fn setup_with(extra: &[&str]) -> Setup {
    let minute = MINUTE_MS.to_string();
    let mut args = vec!["--minute-ms", &minute, "--webhook-rate-limit", "0"];
    args.extend_from_slice(extra);
    let server = Server::start_with(&args);
    let client = server.tenant("queue-policies");
    let sink = Sink::start().await;
    client.upload_example("http").await;
    client.publish("queue-policies", &definition()).await;
    let customer = client.customer("Queue customer").await;
    let instance = client
        .deploy_instance(
            &customer,
            "queue-policies",
            json!({
                "config": {"Sink Url": format!("{}/", sink.url)},
                "allowedHosts": [sink.url],
            }),
        )
        .await;
    Setup {
        server,
        client,
        sink,
        instance,
    }
}

impl Setup {
    async fn send(&self, flow: &str, body: Value) -> support::Reply {
        let url = format!("{}{}", self.server.url, webhook_path(&self.instance, flow));
        deliver(
            &url,
            &[("content-type".into(), "application/json".into())],
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn send_sync(&self, flow: &str, body: Value) -> support::Reply {
        let url = format!("{}{}", self.server.url, webhook_path(&self.instance, flow));
        deliver(
            &url,
            &[
                ("content-type".into(), "application/json".into()),
                ("sluice-synchronous".into(), "true".into()),
            ],
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn accepted(&self, flow: &str, body: Value) -> String {
        let reply = self.send(flow, body).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        reply.body["executionId"].as_str().unwrap().to_string()
    }

    async fn execution(&self, id: &str) -> Value {
        self.client
            .get(&format!("/v1/executions/{id}"))
            .await
            .expect(200)
            .body
    }

    /// Polls until the execution's status is one of `statuses`.
    async fn wait_for(&self, id: &str, statuses: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let execution = self.execution(id).await;
            if statuses.contains(&execution["status"].as_str().unwrap_or("")) {
                return execution;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never reached {statuses:?}: {execution}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_back_off_and_stop() {
    let setup = setup().await;
    let minute = Duration::from_millis(MINUTE_MS);

    // Fails twice, then succeeds on its third attempt.
    let id = setup
        .accepted("retrying", json!({"key": "twice", "fail": 2, "delay": 0}))
        .await;
    let done = setup.wait_for(&id, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempt"], 3, "{done}");
    let hits = setup.sink.hits("twice");
    assert_eq!(
        hits.iter().map(|hit| hit.failed).collect::<Vec<_>>(),
        [true, true, false]
    );
    // Exponential: one minute, then two (lower bounds only; a slow machine adds).
    assert!(
        hits[1].at - hits[0].at >= minute,
        "{:?}",
        hits[1].at - hits[0].at
    );
    assert!(
        hits[2].at - hits[1].at >= minute * 2,
        "{:?}",
        hits[2].at - hits[1].at
    );

    // Always fails: the first run and 3 retries, then it stays failed.
    let id = setup
        .accepted(
            "retrying",
            json!({"key": "always", "fail": 1000, "delay": 0}),
        )
        .await;
    // While it waits for a retry, the API says so.
    let waiting = setup.wait_for(&id, &["queued"]).await;
    let waiting = if waiting["attempt"] == 1 {
        // Not yet run: wait for the first retry to be queued.
        loop {
            let execution = setup.execution(&id).await;
            if execution["attempt"].as_i64().unwrap_or(0) >= 2 || execution["status"] == "failed" {
                break execution;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    } else {
        waiting
    };
    if waiting["status"] == "queued" {
        assert!(waiting["runAfter"].is_string(), "{waiting}");
        assert!(
            waiting["error"].is_string(),
            "the last attempt's error shows: {waiting}"
        );
    }
    let done = setup.wait_for(&id, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["attempt"], 4, "{done}");
    // Nothing more comes after the last attempt.
    tokio::time::sleep(minute * 10).await;
    assert_eq!(setup.sink.hits("always").len(), 4);
    // Each attempt's logs are kept, after the earlier ones.
    let logs = setup
        .client
        .get(&format!("/v1/executions/{id}/logs?limit=1000"))
        .await
        .expect(200)
        .body;
    let seqs: Vec<i64> = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_request_with_the_same_id_cancels_pending_retries() {
    let setup = setup().await;
    let old = setup
        .accepted(
            "cancellable",
            json!({"key": "old", "requestId": "order-7", "fail": 1000, "delay": 0}),
        )
        .await;
    // The first attempt failed and a retry waits (8 minutes = 2 s here).
    loop {
        let execution = setup.execution(&old).await;
        if execution["attempt"] == 2 && execution["status"] == "queued" {
            break;
        }
        assert_ne!(execution["status"], "failed", "{execution}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another request id does not touch it.
    let other = setup
        .accepted(
            "cancellable",
            json!({"key": "other", "requestId": "order-8", "fail": 0, "delay": 0}),
        )
        .await;
    setup.wait_for(&other, &["succeeded"]).await;
    assert_eq!(setup.execution(&old).await["status"], "queued");

    let newer = setup
        .accepted(
            "cancellable",
            json!({"key": "newer", "requestId": "order-7", "fail": 0, "delay": 0}),
        )
        .await;
    setup.wait_for(&newer, &["succeeded"]).await;
    let cancelled = setup.execution(&old).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(
        cancelled["error"]
            .as_str()
            .unwrap()
            .contains("newer request"),
        "{cancelled}"
    );
    // The cancelled retry never runs.
    tokio::time::sleep(Duration::from_millis(MINUTE_MS * 10)).await;
    assert_eq!(setup.sink.hits("old").len(), 1);
    let listed = setup
        .client
        .get("/v1/executions?status=cancelled")
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_keeps_arrival_order_under_concurrent_senders() {
    let setup = Arc::new(setup().await);
    const SENDERS: u64 = 4;
    const EACH: u64 = 8;
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let setup = Arc::clone(&setup);
        // Each sender waits for its 202 before sending the next: its own order is the
        // server's arrival order.
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                let body = json!({
                    "key": "fifo", "id": format!("{sender}-{n}"),
                    "sender": sender, "n": n, "fail": 0, "delay": 15,
                });
                setup.accepted("ordered", body).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    setup.client.wait_until_idle(Duration::from_secs(120)).await;
    let hits = setup.sink.hits("fifo");
    assert_eq!(hits.len() as u64, SENDERS * EACH);
    assert_eq!(
        setup.sink.max_in_flight("fifo"),
        1,
        "one execution at a time"
    );
    for sender in 0..SENDERS {
        let order: Vec<u64> = hits
            .iter()
            .filter(|hit| hit.body["sender"] == sender)
            .map(|hit| hit.body["n"].as_u64().unwrap())
            .collect();
        assert_eq!(order, (0..EACH).collect::<Vec<_>>(), "sender {sender}");
    }
    let executions = setup.client.all_executions("flow=ordered").await;
    assert_eq!(executions.len() as u64, SENDERS * EACH);
    assert!(
        executions
            .iter()
            .all(|execution| execution["status"] == "succeeded" && execution["attempt"] == 1),
        "{executions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retrying_fifo_head_blocks_and_dedupe_drops_repeats() {
    let setup = setup().await;
    // The head fails twice before it succeeds; the one behind it waits for that.
    let head = setup
        .accepted(
            "ordered",
            json!({"key": "head", "id": "h", "fail": 2, "delay": 0}),
        )
        .await;
    let behind = setup
        .accepted(
            "ordered",
            json!({"key": "behind", "id": "b", "fail": 0, "delay": 0}),
        )
        .await;
    let waiting = setup.execution(&behind).await;
    assert!(
        waiting["status"] == "waiting" || waiting["status"] == "queued",
        "{waiting}"
    );
    let behind_done = setup.wait_for(&behind, &["succeeded", "failed"]).await;
    let head_done = setup.execution(&head).await;
    assert_eq!(head_done["status"], "succeeded", "{head_done}");
    assert_eq!(head_done["attempt"], 3);
    assert_eq!(behind_done["status"], "succeeded");
    let head_hits = setup.sink.hits("head");
    let behind_hits = setup.sink.hits("behind");
    assert_eq!(head_hits.len(), 3);
    assert_eq!(behind_hits.len(), 1);
    assert!(
        behind_hits[0].at > head_hits[2].at,
        "the execution behind ran only after the head succeeded"
    );

    // A repeat of a dedupe id the first execution holds (it ran) within 10 minutes
    // (2.5 s here) is not run again: it is recorded as a duplicate of the first.
    let started = Instant::now();
    let first = setup
        .accepted(
            "ordered",
            json!({"key": "dup", "id": "d-1", "fail": 0, "delay": 0}),
        )
        .await;
    setup.wait_for(&first, &["succeeded"]).await;
    let repeat = setup
        .send(
            "ordered",
            json!({"key": "dup", "id": "d-1", "fail": 0, "delay": 0}),
        )
        .await;
    assert_eq!(repeat.status, 200, "{}", repeat.text);
    assert_eq!(repeat.body["deduplicated"], true);
    assert_eq!(repeat.body["duplicateOf"], first.as_str());
    let duplicate = repeat.body["executionId"].as_str().unwrap().to_string();
    assert_eq!(setup.execution(&duplicate).await["status"], "duplicate");
    // After the window the same id is new work again.
    let window = Duration::from_millis(MINUTE_MS * 10);
    tokio::time::sleep((window + Duration::from_millis(200)).saturating_sub(started.elapsed()))
        .await;
    let again = setup
        .accepted(
            "ordered",
            json!({"key": "dup", "id": "d-1", "fail": 0, "delay": 0}),
        )
        .await;
    assert_ne!(again, first);
    setup.wait_for(&again, &["succeeded"]).await;
    assert_eq!(setup.sink.hits("dup").len(), 2);

    // FIFO flows cannot be synchronous.
    let url = format!(
        "{}{}",
        setup.server.url,
        webhook_path(&setup.instance, "ordered")
    );
    let refused = deliver(
        &url,
        &[("sluice-synchronous".into(), "true".into())],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_time_limit_ends_a_slow_execution() {
    let setup = setup().await;
    let id = setup
        .accepted("limited", json!({"key": "slow", "fail": 0, "delay": 5000}))
        .await;
    let done = setup.wait_for(&id, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["failedStep"], "post", "{done}");
    // The step's sandbox was given only what was left of the flow's second.
    let step = done["record"]["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["key"] == "post"))
        .unwrap_or_else(|| panic!("no step `post`: {done}"));
    assert_eq!(step["status"], "failed", "{done}");
    assert_eq!(step["error"]["kind"], "timeout", "{done}");
    let started = chrono_ms(done["startedAt"].as_str().unwrap());
    let finished = chrono_ms(done["finishedAt"].as_str().unwrap());
    assert!(
        finished - started < 5000,
        "ended by the 1 s limit, not the 5 s sink"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_instance_discards_its_queue() {
    let setup = setup().await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(
            setup
                .accepted(
                    "ordered",
                    json!({"key": "doomed", "id": format!("x-{n}"), "fail": 0, "delay": 400}),
                )
                .await,
        );
    }
    let instance_id = setup.instance["id"].as_str().unwrap();
    setup
        .client
        .delete(&format!("/v1/instances/{instance_id}"))
        .await
        .expect(200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // At most the head (running when the instance went) reached the sink.
    assert!(setup.sink.hits("doomed").len() <= 1);
    let left = setup
        .client
        .all_executions(&format!("instanceId={instance_id}"))
        .await;
    assert!(
        left.iter()
            .all(|execution| execution["status"] != "queued" && execution["status"] != "waiting"),
        "{left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_answers_busy_and_requeues_asynchronous_work() {
    // One sandbox slot, refused after 300 ms of waiting for it.
    let setup = Arc::new(
        setup_with(&[
            "--concurrency",
            "1",
            "--workers",
            "1",
            "--busy-wait-ms",
            "300",
        ])
        .await,
    );
    let slow = {
        let setup = Arc::clone(&setup);
        tokio::spawn(async move {
            setup
                .send_sync("retrying", json!({"key": "hog", "fail": 0, "delay": 1500}))
                .await
        })
    };
    // Wait until the slow one holds the slot.
    let deadline = Instant::now() + Duration::from_secs(30);
    while setup.sink.hits("hog").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the slow execution never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = setup
        .send_sync("retrying", json!({"key": "refused", "fail": 0, "delay": 0}))
        .await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "busy");
    assert!(refused.headers.get("retry-after").is_some());
    assert!(refused.headers.get("sluice-execution-id").is_some());
    // Asynchronous work that meets a full server is not lost: it is queued again and
    // runs once the slot is free (the hog holds it for 1.5 s, the worker gives up
    // after 0.3 s).
    let queued = setup
        .accepted(
            "cancellable",
            json!({"key": "later", "fail": 0, "delay": 0}),
        )
        .await;
    assert_eq!(slow.await.unwrap().status, 200);
    let done = setup.wait_for(&queued, &["succeeded", "failed"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["attempt"].as_i64().unwrap() >= 2, "{done}");
    assert_eq!(setup.sink.hits("later").len(), 1);
}

/// Milliseconds since the epoch of an RFC 3339 time the API wrote
/// (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
fn chrono_ms(text: &str) -> i64 {
    let time = humantime::parse_rfc3339(text).unwrap_or_else(|err| panic!("{text}: {err}"));
    time.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
