//! Shared helpers of the runtime's integration tests: real guests from `examples/`,
//! built for wasm32-wasip2 on first use.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use sluice_runtime::guest_build;
use sluice_runtime::{
    Call, Capabilities, ExecutionContext, ExecutionReport, Limits, LoadedComponent, MemoryLogSink,
    Outcome, Returned, Runtime, RuntimeConfig,
};

pub fn guest_bytes(name: &str) -> Vec<u8> {
    let path = guest_build::example(name).unwrap_or_else(|err| panic!("{err}"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

pub fn runtime(concurrency: u32) -> Runtime {
    Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(concurrency)
            .busy_wait(Duration::from_secs(5)),
    )
    .expect("runtime")
}

pub fn load(runtime: &Runtime, name: &str) -> LoadedComponent {
    runtime
        .load(&guest_bytes(name))
        .unwrap_or_else(|err| panic!("loading {name}: {err}"))
}

pub fn context(execution: &str) -> ExecutionContext {
    ExecutionContext {
        execution_id: execution.to_string(),
        tenant_id: "tenant-a".into(),
        customer_id: Some("customer-1".into()),
        customer_external_id: Some("ext-1".into()),
        integration_id: "integration-1".into(),
        instance_id: "instance-1".into(),
        flow_name: "Sync issues".into(),
        step: Some("step-1".into()),
        attempt: 1,
        started_at_ms: 1_700_000_000_000,
        webhook_urls: vec![("Sync issues".into(), "https://hooks.example/abc".into())],
    }
}

/// Capabilities that keep logs in memory, for inspection.
pub fn capabilities() -> (Capabilities, MemoryLogSink) {
    let logs = MemoryLogSink::new();
    let caps = Capabilities {
        log: Arc::new(logs.clone()),
        ..Capabilities::default()
    };
    (caps, logs)
}

pub fn action(name: &str, input: &str) -> Call {
    Call::Action {
        action: name.into(),
        input: input.into(),
    }
}

pub async fn run(
    runtime: &Runtime,
    component: &LoadedComponent,
    call: Call,
    caps: &Capabilities,
    limits: &Limits,
) -> ExecutionReport {
    runtime
        .execute(component, call, context("exec-1"), caps, limits)
        .await
        .expect("execution starts")
}

/// The JSON output of a completed action, parsed.
pub fn json_output(report: &ExecutionReport) -> serde_json::Value {
    match &report.outcome {
        Outcome::Completed {
            result: Returned::Output(output),
        } => match &output.data {
            sluice_runtime::Data::Json(text) => serde_json::from_str(text).expect("output parses"),
            other => panic!("expected JSON data, got {other:?}"),
        },
        other => panic!("expected a completed action, got {other:?}"),
    }
}

/// Runs `hello`'s echo and checks it succeeds: the runtime is still healthy.
pub async fn assert_hello_works(runtime: &Runtime, hello: &LoadedComponent) {
    let (caps, _) = capabilities();
    let report = run(
        runtime,
        hello,
        action("echo", r#"{"still":"alive"}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    assert_eq!(json_output(&report), serde_json::json!({"still": "alive"}));
}
