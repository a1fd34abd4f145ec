//! The test harness, driven through the real `hello` and `hello-flow` guests: inputs,
//! connections, config and initial state go in; outcome, state changes and logs
//! come out.

use serde_json::json;
use sluice_runtime::guest_build::example;
use sluice_runtime::harness::{Harness, HarnessError, Scope, StateChange};
use sluice_runtime::{Connection, GuestErrorKind, HttpRequest, Limits, Outcome, TriggerOutcome};

fn hello() -> Harness {
    Harness::from_file(example("hello").unwrap()).unwrap()
}

#[tokio::test]
async fn state_goes_in_and_changes_come_out() {
    let harness = hello().with_state(Scope::Flow, "count", json!(41));
    let run = harness.action("counter", json!({})).await.unwrap();
    assert_eq!(run.json().unwrap(), json!({"count": 42}));
    assert_eq!(
        run.state_changes,
        vec![StateChange {
            scope: Scope::Flow,
            key: "count".into(),
            before: Some(json!(41)),
            after: Some(json!(42)),
        }]
    );
    // Clones share state: the next call sees the write.
    let run = harness.clone().action("counter", json!({})).await.unwrap();
    assert_eq!(run.json().unwrap(), json!({"count": 43}));
    assert_eq!(harness.state(Scope::Flow, "count"), Some(json!(43)));
    // A fresh harness shares only the compiled component: it starts from no state.
    let fresh = harness.fresh();
    assert_eq!(fresh.state(Scope::Flow, "count"), None);
    let run = fresh.action("counter", json!({})).await.unwrap();
    assert_eq!(run.json().unwrap(), json!({"count": 1}));
    assert_eq!(harness.state(Scope::Flow, "count"), Some(json!(43)));

    let run = harness
        .action(
            "remember",
            json!({"scope": "execution", "key": "tmp", "value": [1]}),
        )
        .await
        .unwrap();
    assert_eq!(run.state_changes[0].scope, Scope::Execution);
    let run = harness
        .action("forget", json!({"scope": "flow", "key": "count"}))
        .await
        .unwrap();
    assert_eq!(run.state_changes[0].after, None);
}

#[tokio::test]
async fn config_connections_context_and_logs() {
    let harness = hello()
        .with_config("region", json!("eu"))
        .with_connection(Connection {
            key: "crm".into(),
            kind: "api-key".into(),
            fields: json!({"apiKey": "k-1"}),
            token: None,
        })
        .with_context(|context| context.flow_name = "Nightly".into());
    let run = harness.action("whoami", json!({})).await.unwrap();
    let output = run.json().unwrap();
    assert_eq!(output["config"], json!({"region": "eu"}));
    assert_eq!(output["context"]["flowName"], "Nightly");
    assert_eq!(output["context"]["tenantId"], "test-tenant");
    let run = harness
        .action("connection", json!({"key": "crm"}))
        .await
        .unwrap();
    assert_eq!(run.json().unwrap()["fields"], json!({"apiKey": "k-1"}));
    let run = harness.action("echo", json!({"x": 1})).await.unwrap();
    assert_eq!(run.messages(), vec!["echo"]);
}

#[tokio::test]
async fn failures_arrive_as_typed_outcomes() {
    let harness = hello().with_limits(Limits::default().fuel(2_000_000));
    let run = harness
        .action("fail", json!({"kind": "retryable", "message": "later"}))
        .await
        .unwrap();
    assert_eq!(run.guest_error().unwrap().kind, GuestErrorKind::Retryable);
    let err = run.json().unwrap_err();
    assert!(matches!(err, HarnessError::Unexpected { .. }), "{err}");
    assert!(err.to_string().contains("retryable error: later"), "{err}");

    let run = harness
        .action("panic", json!({"message": "bad invariant"}))
        .await
        .unwrap();
    match &run.outcome {
        Outcome::Trap { stderr, .. } => {
            assert!(stderr.as_deref().unwrap_or("").contains("bad invariant"))
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    let run = harness.action("malformed", json!({})).await.unwrap();
    match &run.outcome {
        Outcome::InvalidOutput { message } => {
            assert!(message.contains("does not parse"), "{message}")
        }
        other => panic!("expected invalid output, got {other:?}"),
    }
    let harness = harness.with_limits(Limits::default().memory_bytes(64 << 10));
    let run = harness.action("echo", json!({})).await.unwrap();
    assert!(
        matches!(run.outcome, Outcome::MemoryLimit { .. }),
        "{:?}",
        run.outcome
    );
}

#[tokio::test]
async fn triggers_data_sources_and_hooks() {
    let harness = hello();
    let request = HttpRequest {
        method: "POST".into(),
        body: br#"{"n":1}"#.to_vec(),
        ..HttpRequest::default()
    };
    let run = harness
        .trigger("webhook", request, json!({}))
        .await
        .unwrap();
    assert!(matches!(
        run.trigger_outcome().unwrap(),
        TriggerOutcome::Accept { .. }
    ));
    let run = harness.data_source("colors", json!({})).await.unwrap();
    assert_eq!(run.data_source().unwrap()[0]["key"], "red");
    let run = harness.deploy("webhook", json!({})).await.unwrap();
    assert_eq!(run.state_changes[0].key, "deployed:webhook");
    assert_eq!(
        harness.state(Scope::Instance, "deployed:webhook"),
        Some(json!(true))
    );
    harness.remove("webhook", json!({})).await.unwrap();
    assert_eq!(harness.state(Scope::Instance, "deployed:webhook"), None);
    assert_eq!(harness.manifest().await.unwrap()["key"], "hello");
}

#[tokio::test]
async fn flows_invoke_components_and_record_the_calls() {
    let hello_bytes = std::fs::read(example("hello").unwrap()).unwrap();
    let harness = Harness::from_file(example("hello-flow").unwrap())
        .unwrap()
        .with_component("hello", &hello_bytes)
        .unwrap();
    let payload = json!({"invoke": {"component": "hello", "action": "counter"}});
    let run = harness.flow(payload.clone()).await.unwrap();
    assert_eq!(run.json().unwrap(), json!({"count": 1}));
    assert_eq!(run.invocations.len(), 1);
    assert_eq!(run.invocations[0].action, "counter");
    assert!(run.invocations[0].outcome.is_success());
    // The invoked action's state write is the flow's state change.
    assert_eq!(run.state_changes[0].key, "count");
    assert_eq!(run.messages(), vec!["hello-flow execution"]);

    let run = harness
        .flow(json!({"invoke": {"component": "nope", "action": "echo"}}))
        .await
        .unwrap();
    assert!(
        run.guest_error()
            .unwrap()
            .message
            .contains("no component `nope`")
    );
}
