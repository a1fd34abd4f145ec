//! The shared-scenario mechanism: one scenario, written once, drives a declarative
//! implementation and a code-native implementation (`hello-flow` invoking `hello`) of
//! the same integration; both must show the same observable effects (the responses
//! callers get and the state left behind).

mod flow_support;

use std::sync::Arc;

use flow_support::*;
use serde_json::json;
use sluice_runtime::flow::{Implementation, Scenario};
use sluice_runtime::{HttpRequest, MemoryStateStore, StateNamespace};

const SCENARIO: &str = r#"
name: remember-and-recall
description: Store a value for the instance, read it back, then echo a plain payload.
events:
  - label: remember
    flow: main
    request:
      body: {invoke: {component: hello, action: remember, input: {scope: instance, key: last, value: 42}}}
    expect: {status: succeeded, responseStatus: 200}
  - label: recall
    flow: main
    request:
      body: {invoke: {component: hello, action: recall, input: {scope: instance, key: last}}}
    expect: {status: succeeded}
  - label: echo
    flow: main
    request:
      body: {hello: world}
    expect: {status: succeeded}
"#;

/// The integration as declarative steps: what `hello-flow` does, for the two
/// actions the scenario uses.
const DECLARATIVE: &str = r#"
flows:
  - key: sync
    steps:
      - key: route
        branchOnValue:
          value: {type: reference, value: trigger.results.body.invoke.action}
          branches:
            - name: Remember
              value: remember
              steps:
                - key: remember
                  action: hello.remember
                  inputs:
                    scope: {type: reference, value: trigger.results.body.invoke.input.scope}
                    key: {type: reference, value: trigger.results.body.invoke.input.key}
                    value: {type: reference, value: trigger.results.body.invoke.input.value}
            - name: Recall
              value: recall
              steps:
                - key: recall
                  action: hello.recall
                  inputs:
                    scope: {type: reference, value: trigger.results.body.invoke.input.scope}
                    key: {type: reference, value: trigger.results.body.invoke.input.key}
          else:
            - key: echoBack
              stopExecution:
                body: {type: reference, value: trigger.results.body}
"#;

const CODE: &str = "flows:\n  - key: codeSync\n    code: {component: hello-flow}\n";

#[tokio::test]
async fn one_scenario_drives_both_implementations_alike() {
    let setup = setup().await;
    let scenario = Scenario::from_yaml(SCENARIO).expect("scenario parses");
    let implementations = [
        Implementation::new("declarative", setup.plan(&definition(DECLARATIVE)))
            .route("main", "sync"),
        Implementation::new("code-native", setup.plan(&definition(CODE))).route("main", "codeSync"),
    ];
    let mut observed = Vec::new();
    let mut states = Vec::new();
    for implementation in &implementations {
        // Each implementation gets a fresh instance (its own state store).
        let state = Arc::new(MemoryStateStore::new());
        let mut env = setup.env.clone();
        env.capabilities.state = state.clone();
        let mut signed = 0;
        let mut sign = |_event: &sluice_runtime::flow::scenario::ScenarioEvent,
                        request: &mut HttpRequest| {
            signed += 1;
            request
                .headers
                .push(("x-signature".into(), format!("sig-{signed}")));
        };
        let run = scenario
            .run(&setup.engine, implementation, &env, &mut sign)
            .await
            .expect("scenario runs");
        run.check().unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(run.records.len(), 3);
        assert_eq!(run.records[0].1.execution_id, "remember-and-recall-1");
        // The hook saw every request.
        let trigger = run.records[2]
            .1
            .step("trigger")
            .unwrap()
            .result_value()
            .unwrap()
            .clone();
        assert_eq!(trigger["headers"]["x-signature"], "sig-3");
        observed.push(run.observed());
        states.push(state.snapshot());
    }
    assert_eq!(observed[0], observed[1]);
    assert_eq!(states[0], states[1]);
    let instance = StateNamespace::Instance {
        tenant: "tenant-a".into(),
        instance: "instance-1".into(),
    };
    assert_eq!(states[0][&(instance, "last".to_string())], "42");
    let bodies: Vec<_> = observed[0]
        .iter()
        .map(|observation| observation.response.clone())
        .collect();
    assert_eq!(
        bodies,
        [
            Some((200, Some(json!({"ok": true})))),
            Some((200, Some(json!({"value": 42})))),
            Some((200, Some(json!({"hello": "world"})))),
        ]
    );
}

#[tokio::test]
async fn unmet_expectations_are_reported() {
    let setup = setup().await;
    let scenario = Scenario::from_yaml(
        "name: s\nevents:\n  - {label: boom, flow: f, request: {body: {}}, expect: {status: succeeded, responseStatus: 201}}\n",
    )
    .unwrap();
    let plan = setup.plan(&definition(
        "flows:\n  - key: f\n    steps:\n      - {key: a, action: hello.fail, inputs: {kind: fatal}}\n",
    ));
    let run = scenario
        .run(
            &setup.engine,
            &Implementation::new("x", plan),
            &setup.env,
            &mut |_, _| {},
        )
        .await
        .unwrap();
    let err = run.check().unwrap_err();
    assert!(
        err.contains("event `boom`: expected Succeeded, got Failed"),
        "{err}"
    );
    assert!(err.contains("expected response status 201"), "{err}");
}

/// What a driver of the fake services' scenario does per delivered webhook.
#[tokio::test]
async fn deliver_runs_one_request_and_names_the_failing_step() {
    let setup = setup().await;
    let plan = setup.plan(&definition(
        "flows:\n  - key: ok\n    steps:\n      - {key: a, action: hello.echo}\n  - key: bad\n    steps:\n      - {key: boom, action: hello.fail, inputs: {kind: fatal, message: nope}}\n",
    ));
    let implementation = Implementation::new("declarative", plan).route("github", "ok");
    let request = HttpRequest {
        method: "POST".into(),
        path: String::new(),
        query: Vec::new(),
        headers: vec![("x-github-event".into(), "issues".into())],
        body: br#"{"action":"opened"}"#.to_vec(),
    };
    let record = implementation
        .deliver(&setup.engine, "github", request.clone(), &setup.env)
        .await
        .expect("delivered");
    assert_eq!(record.flow, "ok");
    let err = implementation
        .deliver(&setup.engine, "bad", request, &setup.env)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "declarative: flow `bad` failed at step `boom`: fatal: nope"
    );
}
