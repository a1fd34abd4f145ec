//! A code-native flow in TypeScript (`examples/hello-flow-ts`, on `@sluice/sdk/flow`)
//! run through the harness: it invokes the Rust `hello` component, keeps a count in
//! flow state, and passes the kind of a failed call on.

use std::sync::OnceLock;

use serde_json::json;
use sluice_runtime::GuestErrorKind;
use sluice_runtime::guest_build::example;
use sluice_runtime::guest_build::js::js_example;
use sluice_runtime::harness::{Harness, Scope};

/// The flow, with `hello` as its component, in a fresh harness (the flow is loaded
/// and compiled once per process: it embeds a JavaScript engine).
fn flow() -> Harness {
    static LOADED: OnceLock<Harness> = OnceLock::new();
    let hello = std::fs::read(example("hello").unwrap()).unwrap();
    LOADED
        .get_or_init(|| {
            let wasm = js_example("hello-flow-ts").unwrap_or_else(|e| panic!("{e}"));
            Harness::from_file(wasm).unwrap()
        })
        .fresh()
        .with_component("hello", &hello)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_flow_invokes_a_component_and_keeps_state() {
    let harness = flow();
    let manifest = harness.manifest().await.unwrap();
    assert_eq!(
        manifest,
        json!({
            "name": "hello-flow-ts",
            "description": "Greets through the hello component and counts its runs.",
            "trigger": {"type": "webhook"},
        })
    );

    let run = harness.flow(json!({"name": "Ada"})).await.unwrap();
    let result = run.json().unwrap();
    assert_eq!(result["greeting"], "Hello, Ada!");
    assert_eq!(result["runs"], 1);
    assert_eq!(run.invocations.len(), 1);
    assert_eq!(run.invocations[0].component, "hello");
    assert_eq!(run.invocations[0].action, "echo");
    assert_eq!(run.invocations[0].input, json!({"greeting": "Hello, Ada!"}));
    assert!(run.invocations[0].outcome.is_success());
    assert_eq!(run.messages(), vec!["hello-flow-ts execution", "echo"]);

    // The payload's default applies; the count persists across executions.
    let run = harness.flow(json!({})).await.unwrap();
    let result = run.json().unwrap();
    assert_eq!(result["greeting"], "Hello, world!");
    assert_eq!(result["runs"], 2);
    assert_eq!(harness.state(Scope::Flow, "runs"), Some(json!(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_invocation_keeps_its_kind() {
    let harness = flow();
    for (kind, expected) in [
        ("retryable", GuestErrorKind::Retryable),
        ("invalid-input", GuestErrorKind::InvalidInput),
        ("fatal", GuestErrorKind::Fatal),
    ] {
        let run = harness.flow(json!({"fail": kind})).await.unwrap();
        let error = run.guest_error().unwrap();
        assert_eq!(error.kind, expected, "{kind}: {}", error.message);
        assert_eq!(error.message, "invoking hello.fail: asked to fail");
        assert!(!run.invocations[0].outcome.is_success());
    }
    let run = harness.flow(json!({"name": 7})).await.unwrap();
    assert_eq!(
        run.guest_error().unwrap().kind,
        GuestErrorKind::InvalidInput
    );
}
