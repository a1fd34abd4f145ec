//! Declarative flows end to end on the real `hello` guest: every input kind, branches,
//! loops, stop-execution, error handling with retries, state scopes, component
//! triggers, and the execution record.

mod flow_support;

use std::sync::Arc;
use std::time::Duration;

use flow_support::*;
use serde_json::{Value, json};
use sluice_runtime::flow::{
    EngineOptions, ExecutionRecord, ExecutionStatus, FlowKind, RecordedValue, ResultStore,
    RunError, StepKind, StepStatus, json_request,
};
use sluice_runtime::{HttpRequest, Limits, StateNamespace, StaticConfig};

fn statuses(record: &ExecutionRecord) -> Vec<(String, StepStatus)> {
    record
        .steps
        .iter()
        .map(|step| (step.key.clone(), step.status))
        .collect()
}

#[tokio::test]
async fn every_input_kind_reaches_the_action() {
    let mut setup = setup().await;
    setup.env.capabilities.config =
        Arc::new(StaticConfig::new().with_str("Api Base", "https://api.example"));
    let yaml = definition(
        r##"
configVars:
  - key: Region
    defaultValue: eu
  - key: Api Base
flows:
  - name: Main Flow
    steps:
      - key: first
        action: hello.echo
        inputs:
          literal: 5
          object: {type: value, value: {a: [1, 2]}}
          fromTrigger: {type: reference, value: trigger.results.body.issue.number}
          header: {type: reference, value: trigger.results.headers.content-type}
          missing: {type: reference, value: trigger.results.body.nope}
          region: {type: configVar, value: Region}
          base: {type: configVar, value: Api Base}
          ticket: {type: template, value: "gh-{{trigger.results.body.issue.number}}-{{#Region}}"}
          list: {type: complex, value: [1, {type: reference, value: trigger.results.body.issue.title}]}
          nested: {type: complex, value: {n: {type: reference, value: "$trigger.results.body.issue.number"}, k: x}}
      - name: Second Step
        action: hello.echo
        inputs:
          previous: {type: reference, value: first.results.ticket}
          bracket: {type: reference, value: 'first.results.object["a"][1]'}
          text: {type: template, value: "#{{$first.results.list[1]}}"}
"##,
    );
    let record = setup
        .run(
            &yaml,
            "mainFlow",
            json!({"issue": {"number": 13, "title": "Bug"}}),
        )
        .await;
    assert_eq!(record.status, ExecutionStatus::Succeeded, "{record:#?}");
    assert_eq!(record.kind, FlowKind::Declarative);
    assert_eq!(keys(&record), ["trigger", "first", "secondStep"]);
    assert_eq!(
        result(&record, "first"),
        json!({
            "literal": 5, "object": {"a": [1, 2]}, "fromTrigger": 13,
            "header": "application/json", "region": "eu", "base": "https://api.example",
            "ticket": "gh-13-eu", "list": [1, "Bug"], "nested": {"k": "x", "n": 13}
        })
    );
    assert_eq!(
        result(&record, "secondStep"),
        json!({"previous": "gh-13-eu", "bracket": 2, "text": "#Bug"})
    );
    // The response of a synchronous caller is the last step's output.
    let response = record.response.as_ref().expect("response");
    assert_eq!(response.status, 200);
    assert_eq!(response_body(&record), result(&record, "secondStep"));

    // The record: attempts, metering, the input summary and the step's own logs.
    let first = record.step("first").expect("first");
    assert_eq!(first.kind, StepKind::Action);
    assert_eq!(first.component.as_deref(), Some("hello"));
    assert_eq!(first.action.as_deref(), Some("echo"));
    assert_eq!(first.attempts.len(), 1);
    assert_eq!(first.attempts[0].outcome, "completed");
    assert!(first.fuel_used > 0 && first.peak_memory_bytes > 0);
    assert!(first.ended_at_ms >= first.started_at_ms);
    let input = first.input.as_ref().expect("input summary");
    assert!(
        input.preview.starts_with('{') && input.bytes > 100,
        "{input:?}"
    );
    assert_eq!(first.logs.len(), 1);
    assert_eq!(first.logs[0].message, "echo");
    assert_eq!(first.logs[0].step.as_deref(), Some("first"));
    assert_eq!(
        record.fuel_used,
        record.steps.iter().map(|s| s.fuel_used).sum::<u64>()
    );
    // The caller's sink saw every line too.
    assert_eq!(setup.logs.records().len(), 2);
    // The record serializes to camelCase JSON and reads back.
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["steps"][1]["peakMemoryBytes"], first.peak_memory_bytes);
    assert_eq!(json["steps"][1]["result"]["storage"], "inline");
    let back: ExecutionRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back.steps.len(), 3);
}

#[tokio::test]
async fn the_context_names_the_flow_step_and_execution() {
    let setup = setup().await;
    let yaml = definition(
        "flows:\n  - key: ctx\n    steps:\n      - {key: who, action: hello.whoami}\n      - {key: again, action: hello.whoami}\n",
    );
    let record = setup.run(&yaml, "ctx", json!({})).await;
    let who = result(&record, "who");
    assert_eq!(who["context"]["step"], "who");
    assert_eq!(who["context"]["flowName"], "ctx");
    assert_eq!(who["context"]["attempt"], 1);
    assert_eq!(who["context"]["tenantId"], "tenant-a");
    assert_eq!(who["context"]["executionId"], record.execution_id.as_str());
    assert!(record.execution_id.starts_with("exec-"));
    assert_eq!(result(&record, "again")["context"]["step"], "again");
}

const BRANCH_ON_VALUE: &str = r#"
flows:
  - key: route
    steps:
      - key: switch
        branchOnValue:
          value: {type: reference, value: trigger.results.body.action}
          branches:
            - name: Opened
              value: opened
              steps:
                - {key: onOpened, action: hello.echo, inputs: {branch: opened}}
            - name: Five
              value: 5
              steps:
                - {key: onFive, action: hello.echo, inputs: {branch: five}}
          else:
            - {key: onElse, action: hello.echo, inputs: {branch: else}}
      - key: converge
        action: hello.echo
        inputs:
          taken: {type: reference, value: switch.branch}
          opened: {type: reference, value: onOpened.results.branch}
          other: {type: reference, value: onElse.results.branch}
"#;

#[tokio::test]
async fn branch_on_value_takes_the_matching_branch_and_converges() {
    let setup = setup().await;
    let plan = setup.plan(&definition(BRANCH_ON_VALUE));
    let record = setup
        .run_plan(&plan, "route", json!({"action": "opened"}))
        .await;
    assert_eq!(keys(&record), ["trigger", "switch", "onOpened", "converge"]);
    assert_eq!(
        record.step("switch").unwrap().branch.as_deref(),
        Some("Opened")
    );
    assert_eq!(result(&record, "switch"), json!("Opened"));
    assert_eq!(
        result(&record, "converge"),
        json!({"taken": "Opened", "opened": "opened"})
    );

    // Loose equality: the string "5" equals the branch value 5.
    let record = setup.run_plan(&plan, "route", json!({"action": "5"})).await;
    assert_eq!(keys(&record), ["trigger", "switch", "onFive", "converge"]);

    let record = setup
        .run_plan(&plan, "route", json!({"action": "closed"}))
        .await;
    assert_eq!(keys(&record), ["trigger", "switch", "onElse", "converge"]);
    assert_eq!(
        record.step("switch").unwrap().branch.as_deref(),
        Some("Else")
    );
    assert_eq!(
        result(&record, "converge"),
        json!({"taken": "Else", "other": "else"})
    );
}

const FUEL: &str = r#"
flows:
  - key: fuel
    steps:
      - key: level
        branchOnExpression:
          branches:
            - name: Fuel Critical
              condition: [lessThan, {type: reference, value: trigger.results.body.fuel}, 50]
              steps:
                - {key: critical, action: hello.echo, inputs: {level: critical}}
            - name: Fuel Warning
              condition: [lessThan, {type: reference, value: trigger.results.body.fuel}, 100]
              steps:
                - {key: warning, action: hello.echo, inputs: {level: warning}}
            - name: Big Tanker
              condition:
                - or
                - [and, [greaterThan, {type: reference, value: trigger.results.body.fuel}, 500], [lessThanOrEqual, {type: reference, value: trigger.results.body.crew}, 20]]
                - [in, b, {type: value, value: [a, b, c]}]
              steps: []
          else:
            - {key: fine, action: hello.echo, inputs: {level: fine}}
"#;

#[tokio::test]
async fn branch_on_expression_takes_the_first_true_branch() {
    let setup = setup().await;
    let plan = setup.plan(&definition(FUEL));
    // 30 is also below 100: the first true branch wins (seed §1.6).
    let record = setup.run_plan(&plan, "fuel", json!({"fuel": 30})).await;
    assert_eq!(
        record.step("level").unwrap().branch.as_deref(),
        Some("Fuel Critical")
    );
    assert_eq!(keys(&record), ["trigger", "level", "critical"]);
    let record = setup.run_plan(&plan, "fuel", json!({"fuel": "70"})).await;
    assert_eq!(
        record.step("level").unwrap().branch.as_deref(),
        Some("Fuel Warning")
    );
    // `or` of a nested `and` and an `in` that is always true.
    let record = setup.run_plan(&plan, "fuel", json!({"fuel": 150})).await;
    assert_eq!(
        record.step("level").unwrap().branch.as_deref(),
        Some("Big Tanker")
    );
    assert_eq!(keys(&record), ["trigger", "level"]);
    assert!(record.succeeded());
}

#[tokio::test]
async fn the_documented_loop_guard_lets_a_comment_that_reads_as_json_through() {
    // The guard of the example in docs/flows.md: a comment whose whole body reads as
    // a JSON scalar (`42`, `true`, `null`) is a comment like any other, not a reason
    // to fail the run.
    let setup = setup().await;
    let plan = setup.plan(&definition(
        r#"
flows:
  - key: sync
    steps:
      - key: guard
        branchOnExpression:
          branches:
            - name: From us
              condition: [in, "[From Zendesk]", {type: reference, value: trigger.results.body.comment.body}]
              steps:
                - key: ignore
                  stopExecution: {status: 204}
      - key: copy
        action: hello.echo
        inputs:
          body: {type: reference, value: trigger.results.body.comment.body}
"#,
    ));
    for body in ["42", "true", "null", "\"x\"", "[From Zendesk] 42"] {
        let record = setup
            .run_plan(&plan, "sync", json!({"comment": {"body": body}}))
            .await;
        assert_eq!(
            record.status,
            ExecutionStatus::Succeeded,
            "{body}: {:?}",
            record.error
        );
        let guard = record.step("guard").unwrap().branch.as_deref();
        if body.starts_with("[From Zendesk]") {
            assert_eq!(guard, Some("From us"));
            assert_eq!(keys(&record), ["trigger", "guard", "ignore"]);
        } else {
            assert_eq!(guard, Some("Else"), "{body}");
            assert_eq!(result(&record, "copy"), json!({"body": body}));
        }
    }
}

#[tokio::test]
async fn an_expression_that_cannot_be_evaluated_fails_the_branch_step() {
    let setup = setup().await;
    let yaml = definition(
        r#"
flows:
  - key: bad
    steps:
      - key: check
        branchOnExpression:
          branches:
            - name: Empty
              condition: [isEmpty, {type: reference, value: trigger.results.body.n}]
              steps: []
      - {key: after, action: hello.echo}
"#,
    );
    let record = setup.run(&yaml, "bad", json!({"n": 5})).await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.failed_step.as_deref(), Some("check"));
    let error = record.error.as_ref().unwrap();
    assert_eq!(error.kind, "expression");
    assert!(
        error.message.contains("please provide an array or string"),
        "{error:?}"
    );
    assert_eq!(keys(&record), ["trigger", "check"]);
}

#[tokio::test]
async fn loops_iterate_break_and_collect_the_last_output_of_each_iteration() {
    let setup = setup().await;
    let yaml = definition(
        r#"
flows:
  - key: loops
    steps:
      - key: eachUser
        loopOverItems:
          items: {type: reference, value: trigger.results.body.users}
          steps:
            - key: greet
              action: hello.echo
              inputs:
                text: {type: template, value: "Processed {{eachUser.currentItem.name}}"}
                index: {type: reference, value: eachUser.index}
            - key: times
              loopNTimes:
                count: 2
                steps:
                  - key: inner
                    action: hello.echo
                    inputs:
                      outer: {type: reference, value: eachUser.index}
                      inner: {type: reference, value: times.currentItem}
            - key: stopAtCarol
              branchOnExpression:
                branches:
                  - name: Carol
                    condition: [equal, {type: reference, value: eachUser.currentItem.name}, carol]
                    steps:
                      - {key: leave, breakLoop: {}}
      - key: after
        action: hello.echo
        inputs:
          all: {type: reference, value: eachUser.results}
          lastGreeting: {type: reference, value: greet.results.text}
"#,
    );
    let payload =
        json!({"users": [{"name": "bob"}, {"name": "sally"}, {"name": "carol"}, {"name": "dave"}]});
    let record = setup.run(&yaml, "loops", payload).await;
    assert!(record.succeeded(), "{record:#?}");
    // Dave never runs: the loop broke in Carol's iteration.
    let greets: Vec<Value> = record
        .step_runs("greet")
        .map(|s| s.result_value().unwrap().clone())
        .collect();
    assert_eq!(greets.len(), 3);
    assert_eq!(greets[1], json!({"text": "Processed sally", "index": 1}));
    assert_eq!(record.step_runs("greet").nth(2).unwrap().iteration, [2]);
    let inner: Vec<Vec<u32>> = record
        .step_runs("inner")
        .map(|s| s.iteration.clone())
        .collect();
    assert_eq!(
        inner,
        [
            vec![0, 0],
            vec![0, 1],
            vec![1, 0],
            vec![1, 1],
            vec![2, 0],
            vec![2, 1]
        ]
    );
    assert_eq!(
        result(&record, "times"),
        json!([{"outer": 2, "inner": 0}, {"outer": 2, "inner": 1}])
    );
    // A loop's result: the last output of each iteration (here the inner loop's list).
    let all = result(&record, "eachUser");
    assert_eq!(all.as_array().unwrap().len(), 3);
    assert_eq!(
        all[0],
        json!([{"outer": 0, "inner": 0}, {"outer": 0, "inner": 1}])
    );
    assert_eq!(result(&record, "after")["all"], all);
    assert_eq!(result(&record, "after")["lastGreeting"], "Processed carol");
    // The loop's record comes first, then its iterations'.
    let order = keys(&record);
    assert_eq!(order[..3], ["trigger", "eachUser", "greet"]);
    assert_eq!(record.step("leave").unwrap().kind, StepKind::BreakLoop);
}

#[tokio::test]
async fn loops_of_nothing_and_bad_items() {
    let setup = setup().await;
    let yaml = definition(
        r#"
flows:
  - key: loops
    steps:
      - key: each
        loopOverItems:
          items: {type: reference, value: trigger.results.body.items}
          steps:
            - {key: inner, action: hello.echo}
      - key: after
        action: hello.echo
        inputs:
          results: {type: reference, value: each.results}
          inner: {type: reference, value: inner.results}
"#,
    );
    let plan = setup.plan(&yaml);
    let record = setup.run_plan(&plan, "loops", json!({"items": []})).await;
    assert_eq!(result(&record, "after"), json!({"results": []}));
    let record = setup
        .run_plan(&plan, "loops", json!({"items": "nope"}))
        .await;
    assert_eq!(record.failed_step.as_deref(), Some("each"));
    assert!(record.error.unwrap().message.contains("must be a list"));
}

#[tokio::test]
async fn stop_execution_ends_the_flow_with_a_response() {
    let setup = setup().await;
    let yaml = definition(
        r#"
flows:
  - key: stop
    steps:
      - key: respond
        stopExecution:
          status: 303
          headers: {type: value, value: {Location: "https://example.com"}}
          contentType: application/json
          body: {type: complex, value: {id: {type: reference, value: trigger.results.body.id}}}
      - {key: never, action: hello.echo}
"#,
    );
    let record = setup.run(&yaml, "stop", json!({"id": 7})).await;
    assert!(record.succeeded());
    assert_eq!(keys(&record), ["trigger", "respond"]);
    let response = record.response.as_ref().unwrap();
    assert_eq!(response.status, 303);
    assert_eq!(
        response.headers,
        [("Location".to_string(), "https://example.com".to_string())]
    );
    assert_eq!(response.content_type.as_deref(), Some("application/json"));
    assert_eq!(response_body(&record), json!({"id": 7}));
}

#[tokio::test]
async fn stop_execution_headers_may_be_a_bare_object_or_list_as_documented() {
    let setup = setup().await;
    let yaml = definition(
        r#"
flows:
  - key: object
    steps:
      - key: respond
        stopExecution:
          status: 302
          headers: {Location: "https://example.com", X-Issue: {type: template, value: "gh-{{trigger.results.body.id}}"}}
  - key: pairs
    steps:
      - key: respond
        stopExecution:
          headers: [[x-a, b], [x-a, c]]
"#,
    );
    let plan = setup.plan(&yaml);
    let record = setup.run_plan(&plan, "object", json!({"id": 7})).await;
    assert!(record.succeeded(), "{:?}", record.error);
    let response = record.response.as_ref().unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(
        response.headers,
        [
            ("Location".to_string(), "https://example.com".to_string()),
            ("X-Issue".to_string(), "gh-7".to_string())
        ]
    );
    let record = setup.run_plan(&plan, "pairs", json!({})).await;
    assert!(record.succeeded(), "{:?}", record.error);
    assert_eq!(
        record.response.as_ref().unwrap().headers,
        [
            ("x-a".to_string(), "b".to_string()),
            ("x-a".to_string(), "c".to_string())
        ]
    );
    // A header value that is not a string is refused at validation, at its name.
    let err = setup
        .compile(&definition(
            "flows:\n  - key: f\n    steps:\n      - {key: s, stopExecution: {headers: {X-N: 5}}}\n",
        ))
        .unwrap_err();
    assert_eq!(
        err.errors[0].path,
        "flows[0].steps[0].stopExecution.headers"
    );
    assert!(
        err.errors[0]
            .message
            .contains("`headers` must be an object of strings"),
        "{err}"
    );
}

#[tokio::test]
async fn an_action_output_shapes_the_response() {
    let setup = setup().await;
    let yaml = definition(
        "flows:\n  - key: r\n    steps:\n      - {key: respond, action: hello.respond, inputs: {status: 201, body: made, headers: {type: value, value: [[x-a, b]]}}}\n",
    );
    let record = setup.run(&yaml, "r", json!({})).await;
    let response = record.response.unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(response.headers, [("x-a".to_string(), "b".to_string())]);
    assert_eq!(response.content_type.as_deref(), Some("text/plain"));
}

const ERRORS: &str = r#"
flows:
  - key: failing
    steps:
      - {key: boom, action: hello.fail, inputs: {kind: fatal, message: nope}}
      - {key: never, action: hello.echo}
  - key: ignoring
    steps:
      - key: boom
        action: hello.fail
        inputs: {kind: fatal, message: nope}
        errorConfig: {errorHandlerType: ignore}
      - key: deadLetter
        branchOnExpression:
          branches:
            - name: Failed
              condition: [exists, {type: reference, value: boom.results.error}]
              steps:
                - key: park
                  action: hello.echo
                  inputs: {why: {type: reference, value: boom.results.error.message}}
  - key: retrying
    steps:
      - key: flaky
        action: hello.fail
        inputs: {kind: retryable, message: later}
        errorConfig: {errorHandlerType: retry, maxAttempts: 3, delaySeconds: 2, usesExponentialBackoff: true}
  - key: retryingThenIgnoring
    steps:
      - key: flaky
        action: hello.fail
        inputs: {kind: retryable, message: later}
        errorConfig: {errorHandlerType: retry, maxAttempts: 2, delaySeconds: 5, ignoreFinalError: true}
      - key: after
        action: hello.echo
        inputs: {previous: {type: reference, value: flaky.results.error.kind}}
  - key: notRetryable
    steps:
      - key: broken
        action: hello.fail
        inputs: {kind: invalid-input}
        errorConfig: {errorHandlerType: retry, maxAttempts: 5}
"#;

#[tokio::test]
async fn a_failing_step_fails_the_flow_by_default() {
    let setup = setup().await;
    let record = setup.run(&definition(ERRORS), "failing", json!({})).await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.failed_step.as_deref(), Some("boom"));
    let error = record.error.as_ref().unwrap();
    assert_eq!(
        (error.kind.as_str(), error.message.as_str()),
        ("fatal", "nope")
    );
    assert_eq!(
        statuses(&record),
        [
            ("trigger".into(), StepStatus::Succeeded),
            ("boom".into(), StepStatus::Failed)
        ]
    );
    assert!(record.response.is_none());
}

#[tokio::test]
async fn an_ignored_error_is_the_step_result_and_can_be_branched_on() {
    let setup = setup().await;
    let record = setup.run(&definition(ERRORS), "ignoring", json!({})).await;
    assert!(record.succeeded(), "{record:#?}");
    assert_eq!(record.step("boom").unwrap().status, StepStatus::Ignored);
    assert_eq!(
        result(&record, "boom"),
        json!({"error": {"kind": "fatal", "message": "nope"}})
    );
    assert_eq!(result(&record, "park"), json!({"why": "nope"}));
}

#[tokio::test]
async fn retries_wait_with_exponential_backoff_then_fail() {
    let setup = setup().await;
    let record = setup.run(&definition(ERRORS), "retrying", json!({})).await;
    assert_eq!(record.failed_step.as_deref(), Some("flaky"));
    let flaky = record.step("flaky").unwrap();
    // One attempt and three retries, waiting 2, 4 and 8 seconds.
    let attempts: Vec<(u32, u64)> = flaky
        .attempts
        .iter()
        .map(|a| (a.attempt, a.delay_before_ms))
        .collect();
    assert_eq!(attempts, [(1, 0), (2, 2000), (3, 4000), (4, 8000)]);
    assert_eq!(
        setup.sleeper.delays(),
        [
            Duration::from_secs(2),
            Duration::from_secs(4),
            Duration::from_secs(8)
        ]
    );
    assert!(flaky.attempts.iter().all(|a| a.outcome == "guest-error"));
    assert_eq!(
        flaky.fuel_used,
        flaky.attempts.iter().map(|a| a.fuel_used).sum::<u64>()
    );
    assert_eq!(record.error.as_ref().unwrap().kind, "retryable");
}

#[tokio::test]
async fn the_final_error_can_be_ignored_after_retries() {
    let setup = setup().await;
    let record = setup
        .run(&definition(ERRORS), "retryingThenIgnoring", json!({}))
        .await;
    assert!(record.succeeded());
    let flaky = record.step("flaky").unwrap();
    assert_eq!(flaky.status, StepStatus::Ignored);
    assert_eq!(flaky.attempts.len(), 3);
    assert_eq!(setup.sleeper.delays(), [Duration::from_secs(5); 2]);
    assert_eq!(result(&record, "after"), json!({"previous": "retryable"}));
}

#[tokio::test]
async fn errors_the_component_marks_final_are_not_retried() {
    let setup = setup().await;
    let record = setup
        .run(&definition(ERRORS), "notRetryable", json!({}))
        .await;
    assert_eq!(record.failed_step.as_deref(), Some("broken"));
    assert_eq!(record.step("broken").unwrap().attempts.len(), 1);
    assert!(setup.sleeper.delays().is_empty());
    assert_eq!(record.error.unwrap().kind, "invalid-input");
}

#[tokio::test]
async fn limits_end_a_step_with_a_typed_error() {
    let mut setup = setup().await;
    setup.env.limits = Limits::default().fuel(1_000);
    let yaml =
        definition("flows:\n  - key: f\n    steps:\n      - {key: hungry, action: hello.echo}\n");
    let record = setup.run(&yaml, "f", json!({})).await;
    assert_eq!(record.failed_step.as_deref(), Some("hungry"));
    assert_eq!(record.error.as_ref().unwrap().kind, "out-of-fuel");
    assert_eq!(record.step("hungry").unwrap().fuel_used, 1_000);
}

#[tokio::test]
async fn inputs_are_checked_against_the_schema_before_the_sandbox_runs() {
    let setup = setup().await;
    let yaml = definition(
        r#"
flows:
  - key: f
    steps:
      - key: store
        action: hello.remember
        inputs:
          scope: {type: reference, value: trigger.results.body.scope}
          key: k
          value: 1
"#,
    );
    let record = setup.run(&yaml, "f", json!({"scope": "galaxy"})).await;
    assert_eq!(record.failed_step.as_deref(), Some("store"));
    let error = record.error.as_ref().unwrap();
    assert_eq!(error.kind, "invalid-input");
    assert!(error.message.contains("/scope"), "{error:?}");
    assert!(record.step("store").unwrap().attempts.is_empty());
}

#[tokio::test]
async fn execution_state_lives_for_one_execution_and_flow_state_persists() {
    let setup = setup().await;
    let yaml = definition(
        r#"
flows:
  - key: stateful
    steps:
      - key: before
        action: hello.recall
        inputs: {scope: execution, key: seen}
      - key: remember
        action: hello.remember
        inputs: {scope: execution, key: seen, value: {type: reference, value: trigger.results.body.n}}
      - key: after
        action: hello.recall
        inputs: {scope: execution, key: seen}
      - {key: count, action: hello.counter}
      - key: share
        action: hello.remember
        inputs: {scope: instance, key: last, value: {type: reference, value: trigger.results.body.n}}
"#,
    );
    let plan = setup.plan(&yaml);
    for (n, count) in [(1, 1), (2, 2)] {
        let record = setup.run_plan(&plan, "stateful", json!({"n": n})).await;
        assert!(record.succeeded(), "{record:#?}");
        assert_eq!(result(&record, "before"), json!({"value": null}));
        assert_eq!(result(&record, "after"), json!({"value": n}));
        assert_eq!(result(&record, "count"), json!({"count": count}));
    }
    let snapshot = setup.state.snapshot();
    assert!(
        snapshot
            .keys()
            .all(|(namespace, _)| !matches!(namespace, StateNamespace::Execution { .. })),
        "{snapshot:?}"
    );
    let flow = StateNamespace::Flow {
        tenant: "tenant-a".into(),
        instance: "instance-1".into(),
        flow: "stateful".into(),
    };
    assert_eq!(setup.state.value(&flow, "count").as_deref(), Some("2"));
    let instance = StateNamespace::Instance {
        tenant: "tenant-a".into(),
        instance: "instance-1".into(),
    };
    assert_eq!(setup.state.value(&instance, "last").as_deref(), Some("2"));
}

#[tokio::test]
async fn a_component_trigger_accepts_or_answers_the_request() {
    let setup = setup().await;
    let yaml = definition(
        r#"
flows:
  - key: hook
    trigger: {component: hello, trigger: webhook}
    steps:
      - key: use
        action: hello.echo
        inputs: {number: {type: reference, value: trigger.results.body.issue.number}}
"#,
    );
    let plan = setup.plan(&yaml);
    let record = setup
        .run_plan(&plan, "hook", json!({"issue": {"number": 4}}))
        .await;
    assert!(record.succeeded(), "{record:#?}");
    let trigger = record.step("trigger").unwrap();
    assert_eq!(trigger.kind, StepKind::Trigger);
    assert_eq!(trigger.component.as_deref(), Some("hello"));
    assert_eq!(trigger.attempts.len(), 1);
    assert_eq!(result(&record, "use"), json!({"number": 4}));

    let mut request = json_request("{}");
    request.headers.push(("x-reject".into(), "1".into()));
    let record = setup
        .engine
        .run(&plan, "hook", request, &setup.env)
        .await
        .unwrap();
    assert!(record.succeeded());
    assert_eq!(keys(&record), ["trigger"]);
    let response = record.response.unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(
        response.body,
        Some(RecordedValue::Inline(Arc::new(json!("rejected"))))
    );
}

#[tokio::test]
async fn the_builtin_trigger_exposes_the_request() {
    let setup = setup().await;
    let yaml = definition(
        "flows:\n  - key: f\n    steps:\n      - key: see\n        action: hello.echo\n        inputs:\n          method: {type: reference, value: trigger.results.method}\n          q: {type: reference, value: trigger.results.query.page}\n          body: {type: reference, value: trigger.results.body}\n",
    );
    let plan = setup.plan(&yaml);
    let request = HttpRequest {
        method: "PUT".into(),
        path: "extra".into(),
        query: vec![("page".into(), "2".into())],
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: b"plain text".to_vec(),
    };
    let record = setup
        .engine
        .run(&plan, "f", request, &setup.env)
        .await
        .unwrap();
    assert_eq!(
        result(&record, "see"),
        json!({"method": "PUT", "q": "2", "body": "plain text"})
    );
}

#[tokio::test]
async fn large_results_are_stored_by_reference() {
    let setup = setup_with(|options| EngineOptions {
        inline_result_bytes: 64,
        ..options
    })
    .await;
    let yaml = definition(
        r#"
flows:
  - key: big
    steps:
      - key: echo
        action: hello.echo
        inputs: {blob: {type: reference, value: trigger.results.body.blob}}
      - key: size
        action: hello.echo
        inputs: {head: {type: reference, value: echo.results.blob}}
"#,
    );
    let blob = "x".repeat(500);
    let record = setup.run(&yaml, "big", json!({"blob": blob})).await;
    let Some(RecordedValue::Stored {
        reference,
        bytes,
        preview,
    }) = &record.step("echo").unwrap().result
    else {
        panic!("expected a stored result: {record:#?}");
    };
    assert_eq!(*bytes, blob.len() + r#"{"blob":""}"#.len());
    assert!(preview.starts_with(r#"{"blob":"xxx"#));
    let stored = setup.results.get(reference).await.expect("stored");
    assert_eq!(
        serde_json::from_slice::<Value>(&stored).unwrap(),
        json!({"blob": blob})
    );
    // Later steps still read the whole value.
    assert!(matches!(
        record.step("size").unwrap().result,
        Some(RecordedValue::Stored { .. })
    ));
    assert!(record.succeeded());
}

#[tokio::test]
async fn the_step_budget_ends_runaway_loops() {
    let setup = setup_with(|options| EngineOptions {
        max_step_runs: 10,
        ..options
    })
    .await;
    let yaml = definition(
        "flows:\n  - key: f\n    steps:\n      - key: many\n        loopNTimes:\n          count: 100\n          steps:\n            - {key: tick, action: hello.echo}\n",
    );
    let record = setup.run(&yaml, "f", json!({})).await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    assert_eq!(record.failed_step.as_deref(), Some("tick"));
    assert_eq!(record.error.as_ref().unwrap().kind, "limit");
    assert_eq!(record.step("many").unwrap().status, StepStatus::Failed);
}

#[tokio::test]
async fn an_unknown_flow_is_an_error() {
    let setup = setup().await;
    let plan = setup.plan(&definition(
        "flows:\n  - key: f\n    steps:\n      - {key: a, action: hello.echo}\n",
    ));
    fn is_send<T: Send>(_: &T) {}
    let run = setup
        .engine
        .run(&plan, "nope", json_request("{}"), &setup.env);
    // Hosts spawn executions on a multi-threaded runtime.
    is_send(&run);
    let err = run.await.unwrap_err();
    assert!(matches!(err, RunError::UnknownFlow { .. }));
    assert!(err.to_string().contains("its flows: f"), "{err}");
}
