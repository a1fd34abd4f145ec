//! Cross-flow invocation in the engine: `invokeFlow` steps and `invoke-flow` calls of
//! `hello-flow`, run through an in-process [`FlowLauncher`] that executes the child in
//! the same engine; the clear error without a launcher; validation of `invokeFlow`;
//! and the harness's `with_flow`.

mod flow_support;

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use flow_support::*;
use serde_json::json;
use sluice_runtime::flow::{
    Definition, ExecutionStatus, FlowEngine, FlowLaunch, FlowLauncher, Launched, Plan, RunEnv,
    StepKind, StepStatus, json_request, validate,
};
use sluice_runtime::guest_build::example;
use sluice_runtime::harness::Harness;
use sluice_runtime::{ExecutionContext, GuestError, GuestErrorKind, Outcome};

/// Runs children at once in the engine it is given, as a server runs a synchronous
/// child; an asynchronous call only records the launch and answers with an id.
#[derive(Default)]
struct InProcessLauncher {
    engine: OnceLock<(FlowEngine, Plan, RunEnv)>,
    launches: Mutex<Vec<FlowLaunch>>,
    /// Refuse every launch with this error instead.
    refuse: Option<GuestError>,
}

impl InProcessLauncher {
    fn launches(&self) -> Vec<FlowLaunch> {
        self.launches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl FlowLauncher for InProcessLauncher {
    async fn launch(&self, launch: FlowLaunch) -> Result<Launched, GuestError> {
        let number = {
            let mut launches = self.launches.lock().unwrap_or_else(PoisonError::into_inner);
            launches.push(launch.clone());
            launches.len()
        };
        if let Some(error) = &self.refuse {
            return Err(error.clone());
        }
        let execution_id = format!("child-{number}");
        if !launch.synchronous {
            return Ok(Launched::Queued { execution_id });
        }
        let (engine, plan, env) = self.engine.get().expect("the launcher is bound");
        let env = RunEnv {
            context: ExecutionContext {
                execution_id,
                ..env.context.clone()
            },
            ..env.clone()
        };
        let record = engine
            .run(plan, &launch.flow, json_request(launch.payload), &env)
            .await
            .map_err(|err| GuestError::fatal(err.to_string()))?;
        Ok(Launched::Finished(Box::new(record)))
    }
}

/// A setup whose engine launches children through `launcher`, bound to `yaml`'s plan.
async fn with_launcher(yaml: &str, launcher: Arc<InProcessLauncher>) -> (Setup, Plan) {
    let dynamic: Arc<dyn FlowLauncher> = launcher.clone();
    let setup = setup_with(|options| sluice_runtime::flow::EngineOptions {
        launcher: Some(dynamic),
        ..options
    })
    .await;
    let plan = setup.plan(yaml);
    let bound = launcher
        .engine
        .set((setup.engine.clone(), plan.clone(), setup.env.clone()))
        .is_ok();
    assert!(bound, "a launcher serves one setup");
    (setup, plan)
}

const FLOWS: &str = r#"flows:
  - key: parent
    steps:
      - key: child
        invokeFlow:
          flow: child
          payload: {type: complex, value: {n: {type: reference, value: trigger.results.body.n}}}
      - key: queued
        invokeFlow: {flow: child, payload: {type: value, value: {q: 1}}, synchronous: false}
      - key: last
        action: hello.echo
        inputs:
          fromChild: {type: reference, value: child.results}
          queuedAs: {type: reference, value: queued.results.executionId}
  - key: child
    steps:
      - key: double
        action: hello.echo
        inputs:
          got: {type: reference, value: trigger.results.body}
          parent: {type: reference, value: trigger.results.headers}
  - key: code
    code: {component: hello-flow}
  - key: failing
    steps:
      - key: boom
        action: hello.fail
        inputs: {kind: retryable, message: down}
"#;

#[tokio::test]
async fn an_invoke_flow_step_runs_the_child_and_records_it() {
    let launcher = Arc::new(InProcessLauncher::default());
    let yaml = definition(FLOWS);
    let (setup, plan) = with_launcher(&yaml, launcher.clone()).await;
    let record = setup.run_plan(&plan, "parent", json!({"n": 7})).await;
    assert!(record.succeeded(), "{record:#?}");
    assert_eq!(keys(&record), ["trigger", "child", "queued", "last"]);

    let child = record.step("child").unwrap();
    assert_eq!(child.kind, StepKind::InvokeFlow);
    assert_eq!(child.flow.as_deref(), Some("child"));
    assert_eq!(child.child_execution_id.as_deref(), Some("child-1"));
    assert_eq!(child.attempts.len(), 1);
    assert_eq!(child.input.as_ref().unwrap().preview, r#"{"n":7}"#);
    // Synchronous: the result is the child's response, its last step's output.
    assert_eq!(child.result_value().unwrap()["got"], json!({"n": 7}));

    let queued = record.step("queued").unwrap();
    assert_eq!(queued.child_execution_id.as_deref(), Some("child-2"));
    assert_eq!(
        queued.result_value(),
        Some(&json!({"executionId": "child-2"}))
    );
    assert_eq!(
        result(&record, "last")["queuedAs"],
        json!("child-2"),
        "later steps read the queued child's id"
    );

    let launches = launcher.launches();
    assert_eq!(launches.len(), 2);
    assert!(launches[0].synchronous && !launches[1].synchronous);
    assert_eq!(launches[0].flow, "child");
    assert_eq!(launches[1].payload, r#"{"q":1}"#);
    // The launcher learns which execution (and step) is the parent.
    assert_eq!(launches[0].parent.execution_id, record.execution_id);
    assert_eq!(launches[0].parent.flow_name, "parent");
    assert_eq!(launches[0].parent.step.as_deref(), Some("child"));
}

#[tokio::test]
async fn a_failed_child_fails_the_step_with_the_childs_error() {
    let yaml = definition(
        &(FLOWS.to_string()
            + r#"  - key: callsFailing
    steps:
      - key: call
        invokeFlow: {flow: failing}
  - key: ignoresFailing
    steps:
      - key: call
        invokeFlow: {flow: failing}
        errorConfig: {errorHandlerType: retry, maxAttempts: 2, delaySeconds: 1, ignoreFinalError: true}
"#),
    );
    let launcher = Arc::new(InProcessLauncher::default());
    let (setup, plan) = with_launcher(&yaml, launcher.clone()).await;

    let record = setup.run_plan(&plan, "callsFailing", json!({})).await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.failed_step.as_deref(), Some("call"));
    let error = record.error.as_ref().unwrap();
    assert_eq!(error.kind, "retryable");
    assert_eq!(
        error.message,
        "flow `failing` (execution child-1) failed at step `boom`: down"
    );

    // The child's retryable error is retried like an action's, each call a new child.
    let record = setup.run_plan(&plan, "ignoresFailing", json!({})).await;
    assert!(record.succeeded(), "{record:#?}");
    let call = record.step("call").unwrap();
    assert_eq!(call.status, StepStatus::Ignored);
    assert_eq!(call.attempts.len(), 3);
    assert_eq!(call.child_execution_id.as_deref(), Some("child-4"));
    assert_eq!(setup.sleeper.delays().len(), 2);
}

#[tokio::test]
async fn a_code_native_flow_invokes_flows_as_recorded_steps() {
    let launcher = Arc::new(InProcessLauncher::default());
    let yaml = definition(FLOWS);
    let (setup, plan) = with_launcher(&yaml, launcher.clone()).await;

    let payload = json!({"invokeFlow": {"flow": "child", "payload": {"from": "code"}}});
    let record = setup.run_plan(&plan, "code", payload).await;
    assert!(record.succeeded(), "{record:#?}");
    assert_eq!(keys(&record), ["trigger", "hello-flow", "flow:child"]);
    let call = record.step("flow:child").unwrap();
    assert_eq!(call.kind, StepKind::InvokeFlow);
    assert_eq!(call.child_execution_id.as_deref(), Some("child-1"));
    // The code flow returned the child's output unchanged: it is the response.
    assert_eq!(response_body(&record)["got"], json!({"from": "code"}));

    let payload = json!({"invokeFlow": {"flow": "child", "async": true}});
    let record = setup.run_plan(&plan, "code", payload).await;
    assert!(record.succeeded(), "{record:#?}");
    assert_eq!(response_body(&record), json!({"executionId": "child-2"}));
    assert!(!launcher.launches()[1].synchronous);

    // An unknown flow is refused by the engine, before any launcher is asked.
    let payload = json!({"invokeFlow": {"flow": "nope"}});
    let record = setup.run_plan(&plan, "code", payload).await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.failed_step.as_deref(), Some("flow:nope"));
    let message = &record.error.as_ref().unwrap().message;
    assert!(
        message.contains("no flow `nope` in integration `Test` (its flows: parent, child"),
        "{message}"
    );
    assert_eq!(launcher.launches().len(), 2);
}

#[tokio::test]
async fn a_launchers_error_reaches_the_caller_with_its_kind() {
    let launcher = Arc::new(InProcessLauncher {
        refuse: Some(GuestError {
            kind: GuestErrorKind::Retryable,
            message: "child exec-9 missed the deadline".into(),
            connection: None,
        }),
        ..InProcessLauncher::default()
    });
    let yaml = definition(FLOWS);
    let (setup, plan) = with_launcher(&yaml, launcher).await;
    let record = setup.run_plan(&plan, "parent", json!({"n": 1})).await;
    assert_eq!(record.failed_step.as_deref(), Some("child"));
    let error = record.error.as_ref().unwrap();
    assert_eq!(
        (error.kind.as_str(), error.message.as_str()),
        ("retryable", "child exec-9 missed the deadline")
    );
}

#[tokio::test]
async fn without_a_launcher_flow_calls_fail_with_a_clear_error() {
    let setup = setup().await;
    let yaml = definition(FLOWS);
    let record = setup.run(&yaml, "parent", json!({"n": 1})).await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.failed_step.as_deref(), Some("child"));
    let error = record.error.as_ref().unwrap();
    assert_eq!(error.kind, "fatal");
    assert!(
        error
            .message
            .starts_with("cannot invoke flow `child`: this engine has no flow launcher"),
        "{}",
        error.message
    );

    let payload = json!({"invokeFlow": {"flow": "child", "async": true}});
    let record = setup.run(&yaml, "code", payload).await;
    assert_eq!(record.failed_step.as_deref(), Some("flow:child"));
    assert!(
        record
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("no flow launcher"),
        "{record:#?}"
    );
}

/// (definition flows, expected path, expected part of the message)
fn invalid() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        (
            "flows:\n  - key: a\n    steps: [{key: x, invokeFlow: {flow: b}}]\n",
            "flows[0].steps[0].invokeFlow.flow",
            "unknown flow `b`: the integration's flows are a",
        ),
        (
            "flows:\n  - key: a\n    steps: [{key: x, invokeFlow: {flow: a}}]\n",
            "flows[0].steps[0].invokeFlow.synchronous",
            "flow `a` invokes itself synchronously",
        ),
        (
            "flows:\n  - key: a\n    steps: [{key: x, invokeFlow: {flow: setup}}]\n  - key: setup\n    on: instanceDeploy\n    steps: [{key: y, action: hello.echo}]\n",
            "flows[0].steps[0].invokeFlow.flow",
            "flow `setup` runs `on: instanceDeploy` and cannot be invoked",
        ),
        (
            "flows:\n  - key: a\n    steps: [{key: x, invokeFlow: {flow: a, synchronous: false, payload: {type: reference, value: nope.results}}}]\n",
            "flows[0].steps[0].invokeFlow.payload",
            "reference to unknown step `nope`",
        ),
        (
            "flows:\n  - key: a\n    steps: [{key: x, invokeFlow: {flow: a, wait: true}}]\n",
            "flows[0].steps[0].invokeFlow.wait",
            "unknown field `wait`",
        ),
        (
            "flows:\n  - key: a\n    steps: [{key: x, invokeFlow: {flow: a, synchronous: false}, inputs: {n: 1}}]\n",
            "flows[0].steps[0].inputs",
            "`inputs` belong to action steps",
        ),
        (
            "flows:\n  - key: a\n    steps: [{key: x, invokeFlow: {flow: a, synchronous: false}, action: hello.echo}]\n",
            "flows[0].steps[0]",
            "a step does one thing, but this one sets `action` and `invokeFlow`",
        ),
    ]
}

#[tokio::test]
async fn invoke_flow_steps_are_validated() {
    let setup = setup().await;
    for (flows, path, message) in invalid() {
        let yaml = definition(flows);
        let errors = match setup.compile(&yaml) {
            Ok(_) => panic!("valid: {flows}"),
            Err(err) => err.errors,
        };
        assert!(
            errors
                .iter()
                .any(|error| error.path == path && error.message.contains(message)),
            "{flows}\nexpected {path}: {message}\ngot {errors:#?}"
        );
    }
    // Valid: a flow defined later, an asynchronous call to itself, a retry policy.
    let yaml = definition(
        "flows:\n  - key: a\n    steps:\n      - {key: x, invokeFlow: {flow: b}, errorConfig: {errorHandlerType: retry}}\n      - {key: y, invokeFlow: {flow: a, synchronous: false, payload: {type: reference, value: x.results}}}\n  - key: b\n    code: {component: hello-flow}\n",
    );
    setup.plan(&yaml);
    let definition = Definition::from_yaml(&yaml).unwrap();
    validate(&definition, None).unwrap();
}

#[tokio::test]
async fn the_harness_runs_flows_a_flow_invokes() {
    let flow = std::fs::read(example("hello-flow").unwrap()).unwrap();
    let harness = Harness::new(&flow).unwrap();
    let run = harness
        .flow(json!({"invokeFlow": {"flow": "echo"}}))
        .await
        .unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::Fatal);
    assert!(
        error.message.contains("without an invoker"),
        "{}",
        error.message
    );

    let harness = harness.with_flow("echo", &flow).unwrap();
    let run = harness
        .flow(json!({"invokeFlow": {"flow": "echo", "payload": {"hi": 1}}}))
        .await
        .unwrap();
    assert_eq!(run.json().unwrap(), json!({"hi": 1}));
    assert_eq!(run.flow_invocations.len(), 1);
    assert!(run.flow_invocations[0].synchronous);
    assert_eq!(run.flow_invocations[0].payload, json!({"hi": 1}));

    let run = harness
        .flow(json!({"invokeFlow": {"flow": "echo", "async": true}}))
        .await
        .unwrap();
    let id = run.json().unwrap()["executionId"].clone();
    assert_eq!(id, json!(run.flow_invocations[0].execution_id));
    assert!(matches!(
        run.flow_invocations[0].outcome,
        Outcome::Completed { .. }
    ));

    let run = harness
        .flow(json!({"invokeFlow": {"flow": "other"}}))
        .await
        .unwrap();
    assert!(
        run.guest_error()
            .unwrap()
            .message
            .contains("the harness has no flow `other`"),
        "{:?}",
        run.outcome
    );
}
