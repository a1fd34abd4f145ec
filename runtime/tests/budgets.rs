//! Budgets outside the guest's linear memory: every log record costs a fixed overhead,
//! state writes are held to a quota, a guest that exits (at instantiation or in a
//! call) is a guest fault, and an output nested deeper than state accepts is invalid.
//! Each hostile guest ends with its typed outcome and the runtime runs `hello` after.

mod common;

use std::sync::Arc;

use common::*;
use sluice_runtime::{
    Capabilities, LOG_RECORD_OVERHEAD_BYTES, Limits, MAX_JSON_DEPTH, MemoryLogSink,
    MemoryStateStore, Outcome, StateNamespace, StateQuota, StateUsage,
};

#[tokio::test]
async fn empty_log_lines_hit_the_log_limit() {
    let runtime = runtime(4);
    let flood = load(&runtime, "empty-log-flood");
    let hello = load(&runtime, "hello");
    let (caps, logs) = capabilities();
    let budget = 64usize << 10;
    let limits = Limits::default().log_bytes(budget);
    let report = run(&runtime, &flood, action("run", "{}"), &caps, &limits).await;
    assert_eq!(report.outcome, Outcome::LogLimit { limit: budget });
    let records = logs.records().len() as u64;
    let most = budget as u64 / LOG_RECORD_OVERHEAD_BYTES;
    assert_eq!(records, most, "records kept on a {budget}-byte budget");
    // What was charged: every record written plus the one refused.
    assert_eq!(
        report.metering.log_bytes,
        (records + 1) * LOG_RECORD_OVERHEAD_BYTES
    );
    assert_hello_works(&runtime, &hello).await;
}

fn instance_scope() -> StateNamespace {
    // `common::context` runs as tenant-a, instance-1.
    StateNamespace::Instance {
        tenant: "tenant-a".into(),
        instance: "instance-1".into(),
    }
}

fn guest_error_message(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::GuestError { error } => &error.message,
        other => panic!("expected a guest error, got {other:?}"),
    }
}

#[tokio::test]
async fn state_flood_stops_at_the_default_instance_quota() {
    let runtime = runtime(4);
    let flood = load(&runtime, "state-flood");
    let hello = load(&runtime, "hello");
    let store = Arc::new(MemoryStateStore::new());
    let caps = Capabilities {
        state: store.clone(),
        log: Arc::new(MemoryLogSink::new()),
        ..Capabilities::default()
    };
    let report = run(
        &runtime,
        &flood,
        action("run", "{}"),
        &caps,
        &Limits::default(),
    )
    .await;
    let message = guest_error_message(&report.outcome);
    assert!(message.contains("QuotaExceeded"), "{message}");
    let quota = StateQuota::default();
    let used = store.usage(&instance_scope());
    assert!(used.bytes <= quota.instance_bytes, "{used:?}");
    // 1 MiB values: the store is full to within one value.
    assert!(used.bytes > quota.instance_bytes - (1 << 20), "{used:?}");
    assert_eq!(store.tenant_usage("tenant-a"), used);
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn state_quota_counts_keys_and_every_scope_of_the_instance() {
    let runtime = runtime(4);
    let flood = load(&runtime, "state-flood");
    let store = Arc::new(MemoryStateStore::with_quota(StateQuota {
        instance_bytes: 1 << 20,
        instance_keys: 25,
        ..StateQuota::default()
    }));
    let caps = Capabilities {
        state: store.clone(),
        log: Arc::new(MemoryLogSink::new()),
        ..Capabilities::default()
    };
    let small = r#"{"valueBytes": 10, "scope": "flow"}"#;
    let report = run(
        &runtime,
        &flood,
        action("run", small),
        &caps,
        &Limits::default(),
    )
    .await;
    assert!(
        guest_error_message(&report.outcome).contains("refused after 25 keys"),
        "{:?}",
        report.outcome
    );
    // The instance scope shares the flow scope's quota: no key left.
    let report = run(
        &runtime,
        &flood,
        action("run", r#"{"valueBytes": 10}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    assert!(
        guest_error_message(&report.outcome).contains("refused after 0 keys"),
        "{:?}",
        report.outcome
    );
    // Keys `flood-0` to `flood-24` (7 or 8 bytes), each with a 12-byte value.
    assert_eq!(
        store.usage(&instance_scope()),
        StateUsage {
            bytes: 25 * (7 + 12) + 15,
            keys: 25
        }
    );
}

#[tokio::test]
async fn a_guest_ignoring_quota_errors_ends_on_a_budget_with_state_bounded() {
    let runtime = runtime(4);
    let flood = load(&runtime, "state-flood");
    let quota = StateQuota {
        instance_bytes: 4 << 20,
        ..StateQuota::default()
    };
    let store = Arc::new(MemoryStateStore::with_quota(quota));
    let caps = Capabilities {
        state: store.clone(),
        log: Arc::new(MemoryLogSink::new()),
        ..Capabilities::default()
    };
    let limits = Limits::default().host_calls(200);
    let report = run(
        &runtime,
        &flood,
        action("run", r#"{"keepGoing": true}"#),
        &caps,
        &limits,
    )
    .await;
    assert_eq!(report.outcome, Outcome::HostCallLimit { limit: 200 });
    assert!(store.usage(&instance_scope()).bytes <= quota.instance_bytes);
}

fn trap_message(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Trap { message, .. } => message,
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn exit_from_a_constructor_is_a_guest_fault() {
    let runtime = runtime(4);
    let guest = load(&runtime, "exit-in-start");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    // Even `manifest()`, which the registry calls on upload, never returns: the
    // constructor runs first.
    for call in [action("run", "{}"), sluice_runtime::Call::Manifest] {
        let report = run(&runtime, &guest, call, &caps, &Limits::default()).await;
        let message = trap_message(&report.outcome);
        // A Rust cdylib for wasip2 runs its constructors at the start of each export,
        // not at instantiation: this guest exercises the exit, not the phase.
        assert!(message.contains("exited with status 1"), "{message}");
        assert!(!report.outcome.is_limit());
    }
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn exit_during_a_call_is_a_guest_fault() {
    let runtime = runtime(4);
    let guest = load(&runtime, "exit-in-call");
    let (caps, _) = capabilities();
    let report = run(
        &runtime,
        &guest,
        action("run", "{}"),
        &caps,
        &Limits::default(),
    )
    .await;
    let message = trap_message(&report.outcome);
    assert!(
        message.contains("exited with status 0 during the call"),
        "{message}"
    );
}

#[tokio::test]
async fn deep_output_is_invalid() {
    let runtime = runtime(4);
    let guest = load(&runtime, "deep-output");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let report = run(
        &runtime,
        &guest,
        action("run", "{}"),
        &caps,
        &Limits::default(),
    )
    .await;
    match &report.outcome {
        Outcome::InvalidOutput { message } => {
            assert!(message.contains("nested more than 127 levels"), "{message}")
        }
        other => panic!("expected invalid-output, got {other:?}"),
    }
    // At the limit the output is accepted, and state accepts the same document.
    let at_limit = format!(r#"{{"depth": {MAX_JSON_DEPTH}}}"#);
    let report = run(
        &runtime,
        &guest,
        action("run", &at_limit),
        &caps,
        &Limits::default(),
    )
    .await;
    let document = json_output(&report);
    let text = document.to_string();
    assert!(sluice_runtime::canonical_json(&text).is_ok());
    let deeper = format!("[{text}]");
    assert!(sluice_runtime::canonical_json(&deeper).is_err());
    assert_hello_works(&runtime, &hello).await;
}
