//! The `text` component through the harness: outputs and input errors.

use serde_json::json;
use sluice_runtime::GuestErrorKind;
use sluice_runtime::guest_build::example;
use sluice_runtime::harness::Harness;

#[tokio::test]
async fn replaces_and_parses_through_the_sandbox() {
    let harness = Harness::from_file(example("text").unwrap()).unwrap();
    let run = harness
        .action(
            "replace",
            json!({"text": "gh-13", "find": "gh-", "replacement": ""}),
        )
        .await
        .unwrap();
    assert_eq!(run.json().unwrap(), json!("13"));
    let run = harness
        .action("toInteger", json!({"text": "13"}))
        .await
        .unwrap();
    assert_eq!(run.json().unwrap(), json!(13));
    let run = harness
        .action("toInteger", json!({"text": "thirteen"}))
        .await
        .unwrap();
    assert_eq!(
        run.guest_error().unwrap().kind,
        GuestErrorKind::InvalidInput
    );
    let run = harness
        .action("replace", json!({"text": "x"}))
        .await
        .unwrap();
    assert!(
        run.guest_error().unwrap().message.contains("find"),
        "{:?}",
        run.outcome
    );
}
