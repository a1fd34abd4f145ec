//! The concurrency gate: after 1,000 hostile executions the pool still admits its full
//! capacity at once, and one execution more waits, then fails with "busy".

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use sluice_runtime::{
    Capabilities, ExecuteError, Limits, Outcome, Runtime, RuntimeConfig, StateNamespace,
    StateStore, StateStoreError,
};
use tokio::sync::Barrier;

const CAPACITY: u32 = 8;

/// A state store whose reads wait until `CAPACITY` readers are inside at once.
struct Rendezvous {
    barrier: Barrier,
}

#[async_trait]
impl StateStore for Rendezvous {
    async fn get(&self, _: &StateNamespace, _: &str) -> Result<Option<String>, StateStoreError> {
        self.barrier.wait().await;
        Ok(Some("\"met\"".into()))
    }
    async fn set(&self, _: &StateNamespace, _: &str, _: String) -> Result<(), StateStoreError> {
        Ok(())
    }
    async fn delete(&self, _: &StateNamespace, _: &str) -> Result<bool, StateStoreError> {
        Ok(false)
    }
    async fn compare_and_swap(
        &self,
        _: &StateNamespace,
        _: &str,
        _: Option<&str>,
        _: Option<String>,
    ) -> Result<bool, StateStoreError> {
        Ok(false)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_hostile_executions_leak_no_slot() {
    let runtime = Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(CAPACITY)
            .busy_wait(Duration::from_millis(300)),
    )
    .unwrap();
    let hostile = [
        ("spin", "{}", Limits::default().fuel(200_000)),
        ("memory-bomb", "{}", Limits::default().memory_bytes(4 << 20)),
        ("deep-recursion", "{}", Limits::default()),
        ("log-flood", "{}", Limits::default().log_bytes(4 << 10)),
        ("host-call-loop", "{}", Limits::default().host_calls(500)),
        (
            "huge-output",
            r#"{"bytes": 65536}"#,
            Limits::default().output_bytes(1024),
        ),
        (
            "spin",
            "{}",
            Limits::default()
                .fuel(u64::MAX / 2)
                .timeout(Duration::from_millis(20)),
        ),
    ]
    .map(|(name, input, limits)| (load(&runtime, name), input, limits));
    let (caps, _) = capabilities();

    // Two at a time, so slots are also released while others are held.
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    let mut pending = tokio::task::JoinSet::new();
    for index in 0..1000usize {
        // Timeouts cost 20 ms each: keep them to one in fifty.
        let pick = if index % 50 == 49 { 6 } else { index % 6 };
        let (component, input, limits) = hostile[pick].clone();
        let (runtime, caps) = (runtime.clone(), caps.clone());
        pending.spawn(async move {
            runtime
                .execute(
                    &component,
                    action("run", input),
                    context("hostile"),
                    &caps,
                    &limits,
                )
                .await
        });
        if pending.len() >= 2
            && let Some(done) = pending.join_next().await
        {
            *outcomes
                .entry(done.unwrap().unwrap().outcome.status())
                .or_default() += 1;
        }
    }
    while let Some(done) = pending.join_next().await {
        *outcomes
            .entry(done.unwrap().unwrap().outcome.status())
            .or_default() += 1;
    }
    assert_eq!(outcomes.values().sum::<usize>(), 1000);
    assert!(!outcomes.contains_key("completed"), "{outcomes:?}");
    for status in [
        "out-of-fuel",
        "memory-limit",
        "trap",
        "log-limit",
        "host-call-limit",
        "output-too-large",
        "timeout",
    ] {
        assert!(
            outcomes.contains_key(status),
            "no {status} among {outcomes:?}"
        );
    }
    assert_eq!(runtime.available_slots(), CAPACITY as usize);

    // Every slot at once: each execution blocks in a host call until all have arrived,
    // which can only happen if all CAPACITY were admitted together.
    let hello = load(&runtime, "hello");
    let caps = Capabilities {
        state: Arc::new(Rendezvous {
            barrier: Barrier::new(CAPACITY as usize),
        }),
        ..Capabilities::default()
    };
    let limits = Limits::default().timeout(Duration::from_secs(20));
    let mut blocked = tokio::task::JoinSet::new();
    for _ in 0..CAPACITY {
        let (runtime, hello, caps, limits) =
            (runtime.clone(), hello.clone(), caps.clone(), limits.clone());
        blocked.spawn(async move {
            runtime
                .execute(
                    &hello,
                    action("recall", r#"{"scope": "flow", "key": "k"}"#),
                    context("full"),
                    &caps,
                    &limits,
                )
                .await
        });
    }
    while let Some(done) = blocked.join_next().await {
        let report = done.unwrap().unwrap();
        assert_eq!(json_output(&report), serde_json::json!({"value": "met"}));
    }
    assert_eq!(runtime.available_slots(), CAPACITY as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_execution_past_capacity_is_told_busy() {
    let runtime = Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(2)
            .busy_wait(Duration::from_millis(200)),
    )
    .unwrap();
    let spin = load(&runtime, "spin");
    let (caps, _) = capabilities();
    let limits = Limits::default()
        .fuel(u64::MAX / 2)
        .timeout(Duration::from_secs(2));
    let mut running = Vec::new();
    for _ in 0..2 {
        let (runtime, spin, caps, limits) =
            (runtime.clone(), spin.clone(), caps.clone(), limits.clone());
        running.push(tokio::spawn(async move {
            runtime
                .execute(&spin, action("run", "{}"), context("s"), &caps, &limits)
                .await
        }));
    }
    // Let both take their slot.
    while runtime.available_slots() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let err = runtime
        .execute(&spin, action("run", "{}"), context("late"), &caps, &limits)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("busy: all 2 execution slots"),
        "{err}"
    );
    match err {
        ExecuteError::Busy {
            capacity: 2,
            waited,
        } => assert!(waited >= Duration::from_millis(200)),
        other => panic!("expected busy, got {other:?}"),
    }
    for handle in running {
        let report = handle.await.unwrap().unwrap();
        assert!(matches!(report.outcome, Outcome::Timeout { .. }));
    }
    assert_eq!(runtime.available_slots(), 2);
}
