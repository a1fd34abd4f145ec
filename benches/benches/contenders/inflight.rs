//! Memory with N executions in flight at once: a runtime with N execution slots
//! (`RuntimeConfig::default().max_concurrency(N)`), N concurrent executions of
//! `examples/hello`'s `recall` (it calls `sluice:flow/state.get`) against a state store
//! whose `get` holds every caller until all N are inside. At that moment each execution
//! has its instance, its store and its suspended fiber stack alive; the process's RSS is
//! read then, and compared with the RSS of the same process before they started (the
//! runtime up, the component loaded, one execution done).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use sluice_benches::DiscardLog;
use sluice_benches::suite::{self, positive};
use sluice_runtime::{
    Call, Capabilities, ExecutionContext, Limits, MemoryStateStore, Outcome, Returned, Runtime,
    RuntimeConfig, StateNamespace, StateStore, StateStoreError,
};
use tokio::sync::{Notify, watch};

/// A state store whose `get` waits until `expected` callers are inside, then until
/// released; it answers "absent".
struct Gate {
    expected: usize,
    inside: AtomicUsize,
    all_inside: Notify,
    release: watch::Receiver<bool>,
}

#[async_trait]
impl StateStore for Gate {
    async fn get(
        &self,
        _namespace: &StateNamespace,
        _key: &str,
    ) -> Result<Option<String>, StateStoreError> {
        if self.inside.fetch_add(1, Ordering::SeqCst) + 1 == self.expected {
            self.all_inside.notify_one();
        }
        let mut release = self.release.clone();
        release
            .wait_for(|released| *released)
            .await
            .map_err(|_| StateStoreError::Unavailable("the gate was dropped".into()))?;
        Ok(None)
    }

    async fn set(
        &self,
        _namespace: &StateNamespace,
        _key: &str,
        _value: String,
    ) -> Result<(), StateStoreError> {
        Ok(())
    }

    async fn delete(
        &self,
        _namespace: &StateNamespace,
        _key: &str,
    ) -> Result<bool, StateStoreError> {
        Ok(false)
    }

    async fn compare_and_swap(
        &self,
        _namespace: &StateNamespace,
        _key: &str,
        _expected: Option<&str>,
        _new: Option<String>,
    ) -> Result<bool, StateStoreError> {
        Ok(false)
    }
}

const RECALL: &str = r#"{"scope":"instance","key":"k"}"#;

fn recall() -> Call {
    Call::Action {
        action: "recall".into(),
        input: RECALL.into(),
    }
}

pub fn run(args: Vec<String>) -> Result<(), String> {
    let mut executions = 1_000;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--executions" => {
                executions = positive(&args.next().ok_or("--executions needs a value")?)?
            }
            other => return Err(format!("unknown inflight option `{other}`")),
        }
    }
    let bytes = sluice_benches::example_bytes("hello")?;
    let executor = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start tokio: {err}"))?;
    let slots = u32::try_from(executions).map_err(|_| "too many executions".to_string())?;
    let runtime = Runtime::new(RuntimeConfig::default().max_concurrency(slots))
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    let component = runtime
        .load(&bytes)
        .map_err(|err| format!("cannot load hello.wasm: {err}"))?;
    let limits = Limits::default();

    let line = executor.block_on(async {
        // One execution first, so code pages, the pool's first slot and the executor
        // are warm in the idle figure too.
        let warm = Capabilities {
            log: Arc::new(DiscardLog),
            state: Arc::new(MemoryStateStore::new()),
            ..Capabilities::default()
        };
        let report = runtime
            .execute(&component, recall(), ExecutionContext::default(), &warm, &limits)
            .await
            .map_err(|err| format!("warm-up failed: {err}"))?;
        if !matches!(report.outcome, Outcome::Completed { .. }) {
            return Err(format!("warm-up: unexpected outcome {:?}", report.outcome));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let rss_idle_kib = suite::rss_kib();

        let (release, released) = watch::channel(false);
        let gate = Arc::new(Gate {
            expected: executions,
            inside: AtomicUsize::new(0),
            all_inside: Notify::new(),
            release: released,
        });
        let capabilities = Capabilities {
            log: Arc::new(DiscardLog),
            state: gate.clone(),
            ..Capabilities::default()
        };
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(executions);
        for _ in 0..executions {
            let runtime = runtime.clone();
            let component = component.clone();
            let capabilities = capabilities.clone();
            let limits = limits.clone();
            tasks.push(tokio::spawn(async move {
                runtime
                    .execute(
                        &component,
                        recall(),
                        ExecutionContext::default(),
                        &capabilities,
                        &limits,
                    )
                    .await
            }));
        }
        tokio::time::timeout(Duration::from_secs(60), gate.all_inside.notified())
            .await
            .map_err(|_| {
                format!(
                    "only {} of {executions} executions reached the state store in 60 s",
                    gate.inside.load(Ordering::SeqCst)
                )
            })?;
        let all_inside = started.elapsed();
        let rss_in_flight_kib = suite::rss_kib();
        release
            .send(true)
            .map_err(|_| "nobody is waiting at the gate".to_string())?;
        let mut completed = 0;
        for task in tasks {
            let report = task
                .await
                .map_err(|err| format!("an execution task failed: {err}"))?
                .map_err(|err| format!("an execution failed: {err}"))?;
            match &report.outcome {
                Outcome::Completed {
                    result: Returned::Output(_),
                } => completed += 1,
                other => return Err(format!("unexpected outcome: {other:?}")),
            }
        }
        Ok(json!({
            "kind": "inflight",
            "executions": executions,
            "allocator": format!("{:?}", runtime.allocator()).to_lowercase(),
            "component": "hello.wasm recall (one state.get)",
            "rss_idle_kib": rss_idle_kib,
            "rss_in_flight_kib": rss_in_flight_kib,
            "per_execution_kib": rss_in_flight_kib.saturating_sub(rss_idle_kib) as f64 / executions as f64,
            "peak_rss_kib": suite::peak_rss_kib(),
            "all_inside_ms": all_inside.as_secs_f64() * 1e3,
            "completed": completed,
        }))
    })?;
    println!("{line}");
    Ok(())
}
