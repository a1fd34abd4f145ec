//! JSON nesting in what a flow reads: a request body is parsed up to the depth every
//! other reader in Sluice takes (`MAX_JSON_DEPTH`, 127 levels, the same cap the
//! sandbox puts on guest output); a deeper one fails the execution at its trigger with
//! an error that says so, instead of turning into a string that conditions misread.

mod flow_support;

use flow_support::*;
use serde_json::{Value, json};
use sluice_runtime::MAX_JSON_DEPTH;
use sluice_runtime::flow::{ExecutionStatus, StepStatus, json_request};

const FLOW: &str = r#"
flows:
  - key: f
    steps:
      - key: check
        branchOnExpression:
          branches:
            - name: Object
              condition: [exists, {type: reference, value: trigger.results.body.a}]
              steps:
                - {key: seen, stopExecution: {status: 200, body: object}}
          else:
            - {key: unseen, stopExecution: {status: 200, body: not an object}}
"#;

/// `{"a": {"a": ... 1}}`, `levels` objects deep.
fn nested(levels: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels))
}

#[tokio::test]
async fn a_body_at_the_json_depth_limit_is_parsed() {
    let setup = setup().await;
    let plan = setup.plan(&definition(FLOW));
    let record = setup
        .engine
        .run(&plan, "f", json_request(nested(MAX_JSON_DEPTH)), &setup.env)
        .await
        .unwrap();
    assert_eq!(
        record.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        record.error
    );
    assert_eq!(response_body(&record), json!("object"));
}

#[tokio::test]
async fn a_body_nested_deeper_fails_the_trigger_instead_of_becoming_a_string() {
    let setup = setup().await;
    let plan = setup.plan(&definition(FLOW));
    for levels in [MAX_JSON_DEPTH + 1, 1_000] {
        let record = setup
            .engine
            .run(&plan, "f", json_request(nested(levels)), &setup.env)
            .await
            .unwrap();
        assert_eq!(record.status, ExecutionStatus::Failed, "{levels}");
        assert_eq!(record.failed_step.as_deref(), Some("trigger"));
        let error = record.error.as_ref().unwrap();
        assert_eq!(error.kind, "invalid-input", "{error:?}");
        assert!(
            error
                .message
                .contains("the request body is JSON nested more than 127 levels deep"),
            "{error:?}"
        );
        let trigger = record.step("trigger").unwrap();
        assert_eq!(trigger.status, StepStatus::Failed);
        // No step ran on a misread body.
        assert_eq!(keys(&record), ["trigger"]);
    }
    // A body that is plain text, even one full of brackets, is still text.
    let text = "[".repeat(300);
    let record = setup
        .engine
        .run(
            &plan,
            "f",
            sluice_runtime::HttpRequest {
                headers: vec![("content-type".into(), "text/plain".into())],
                ..json_request(format!("{text} and words"))
            },
            &setup.env,
        )
        .await
        .unwrap();
    assert_eq!(
        record.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        record.error
    );
    assert_eq!(response_body(&record), Value::from("not an object"));
}
