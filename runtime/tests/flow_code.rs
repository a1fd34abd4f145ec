//! Code-native flows: `hello-flow` runs as one execution, and each of its `invoke`
//! calls runs a `hello` action in a sandbox of its own, recorded as a step.

mod flow_support;

use flow_support::*;
use serde_json::json;
use sluice_runtime::flow::{ExecutionStatus, FlowKind, StepKind, StepStatus};

const CODE: &str = "flows:\n  - key: code\n    code: {component: hello-flow}\n";

#[tokio::test]
async fn a_code_native_flow_runs_as_one_execution() {
    let setup = setup().await;
    let record = setup
        .run(&definition(CODE), "code", json!({"hello": "world"}))
        .await;
    assert!(record.succeeded(), "{record:#?}");
    assert_eq!(record.kind, FlowKind::Code);
    assert_eq!(keys(&record), ["trigger", "hello-flow"]);
    let flow = record.step("hello-flow").unwrap();
    assert_eq!(flow.kind, StepKind::Code);
    assert_eq!(flow.attempts.len(), 1);
    assert!(flow.fuel_used > 0);
    assert_eq!(flow.logs[0].message, "hello-flow execution");
    assert_eq!(response_body(&record), json!({"hello": "world"}));
}

#[tokio::test]
async fn invoke_calls_run_in_their_own_sandbox_and_are_recorded_as_steps() {
    let setup = setup().await;
    let payload = json!({"invoke": {"component": "hello", "action": "echo", "input": {"n": 1}}});
    let record = setup.run(&definition(CODE), "code", payload).await;
    assert!(record.succeeded(), "{record:#?}");
    assert_eq!(keys(&record), ["trigger", "hello-flow", "hello.echo"]);
    let invoke = record.step("hello.echo").unwrap();
    assert_eq!(invoke.kind, StepKind::Invoke);
    assert_eq!(invoke.component.as_deref(), Some("hello"));
    assert_eq!(invoke.action.as_deref(), Some("echo"));
    assert_eq!(invoke.result_value(), Some(&json!({"n": 1})));
    assert_eq!(invoke.logs.len(), 1);
    assert_eq!(invoke.logs[0].message, "echo");
    assert_eq!(invoke.logs[0].step.as_deref(), Some("hello.echo"));
    assert!(invoke.fuel_used > 0 && invoke.peak_memory_bytes > 0);
    // Each sandbox is metered on its own.
    let flow = record.step("hello-flow").unwrap();
    assert_eq!(record.fuel_used, flow.fuel_used + invoke.fuel_used);
    assert_eq!(response_body(&record), json!({"n": 1}));
}

#[tokio::test]
async fn the_invoked_action_sees_the_execution_it_belongs_to() {
    let setup = setup().await;
    let payload = json!({"invoke": {"component": "hello", "action": "whoami"}});
    let record = setup.run(&definition(CODE), "code", payload).await;
    let who = result(&record, "hello.whoami");
    assert_eq!(who["context"]["step"], "hello.whoami");
    assert_eq!(who["context"]["flowName"], "code");
    assert_eq!(who["context"]["executionId"], record.execution_id.as_str());
}

#[tokio::test]
async fn an_invoked_error_fails_the_flow_at_the_invoke_step() {
    let setup = setup().await;
    let payload = json!({"invoke": {"component": "hello", "action": "fail", "input": {"kind": "retryable", "message": "later"}}});
    let record = setup.run(&definition(CODE), "code", payload).await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.failed_step.as_deref(), Some("hello.fail"));
    let error = record.error.as_ref().unwrap();
    assert_eq!(
        (error.kind.as_str(), error.message.as_str()),
        ("retryable", "later")
    );
    assert_eq!(
        record.step("hello.fail").unwrap().status,
        StepStatus::Failed
    );
    assert_eq!(
        record.step("hello-flow").unwrap().status,
        StepStatus::Failed
    );
}

#[tokio::test]
async fn invoke_is_limited_to_pinned_components_and_their_schemas() {
    let setup = setup().await;
    let plan = setup.plan(&definition(CODE));
    let record = setup
        .run_plan(
            &plan,
            "code",
            json!({"invoke": {"component": "github", "action": "x"}}),
        )
        .await;
    assert_eq!(record.failed_step.as_deref(), Some("github.x"));
    let error = record.error.as_ref().unwrap();
    assert_eq!(error.kind, "fatal");
    assert!(error.message.contains("not pinned"), "{error:?}");
    assert!(record.step("github.x").unwrap().attempts.is_empty());

    let record = setup
        .run_plan(
            &plan,
            "code",
            json!({"invoke": {"component": "hello", "action": "remember", "input": {"scope": "flow"}}}),
        )
        .await;
    assert_eq!(record.failed_step.as_deref(), Some("hello.remember"));
    let error = record.error.as_ref().unwrap();
    assert_eq!(error.kind, "invalid-input");
    assert!(error.message.contains("schema"), "{error:?}");

    let record = setup
        .run_plan(
            &plan,
            "code",
            json!({"invoke": {"component": "hello", "action": "nope"}}),
        )
        .await;
    assert!(record.error.unwrap().message.contains("no action `nope`"));
}

#[tokio::test]
async fn a_code_flow_can_have_a_component_trigger() {
    let setup = setup().await;
    let yaml = definition(
        "flows:\n  - key: code\n    trigger: {component: hello, trigger: webhook}\n    code: {component: hello-flow}\n",
    );
    let record = setup.run(&yaml, "code", json!({"a": 1})).await;
    assert!(record.succeeded(), "{record:#?}");
    assert_eq!(
        record.step("trigger").unwrap().component.as_deref(),
        Some("hello")
    );
    assert_eq!(response_body(&record), json!({"a": 1}));
}
