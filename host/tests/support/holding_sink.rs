//! A loopback service a flow posts to that can hold its answers: while held, every
//! request waits (the execution stays running in its HTTP step, as if the API were
//! slow); released, it answers at once. It counts the posts, in all and per execution
//! (by the `executionId` of a JSON body).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long waiting for posts may take before the test gives up (only reached when
/// something is broken).
const PATIENCE: Duration = Duration::from_secs(90);

pub struct HoldingSink {
    pub url: String,
    hold: Arc<AtomicBool>,
    /// Posts by execution id ("" for bodies without one).
    deliveries: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HoldingSink {
    /// Starts holding.
    pub async fn start() -> HoldingSink {
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

    /// Answers the requests waiting and every later one at once.
    pub fn release(&self) {
        self.hold.store(false, Ordering::SeqCst);
    }

    /// Posts received in all.
    pub fn hits(&self) -> usize {
        self.deliveries.lock().expect("sink lock").values().sum()
    }

    /// Posts received from `execution`.
    pub fn deliveries(&self, execution: &str) -> usize {
        self.deliveries
            .lock()
            .expect("sink lock")
            .get(execution)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until the sink has been posted to `count` times in all.
    pub async fn wait_for_hits(&self, count: usize) {
        self.wait_until(|sink| sink.hits() >= count, || format!("{count} posts"))
            .await;
    }

    /// Waits until `execution` has posted `count` times.
    pub async fn wait_for(&self, execution: &str, count: usize) {
        self.wait_until(
            |sink| sink.deliveries(execution) >= count,
            || format!("{count} posts from execution {execution}"),
        )
        .await;
    }

    async fn wait_until(&self, done: impl Fn(&Self) -> bool, what: impl Fn() -> String) {
        let deadline = Instant::now() + PATIENCE;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "the sink did not get {} (it got {} in all)",
                what(),
                self.hits()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for HoldingSink {
    fn drop(&mut self) {
        self.release();
        self.task.abort();
    }
}
