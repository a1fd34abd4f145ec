//! The cap on step runs per execution (`EngineOptions::max_step_runs`): one setting
//! that validation and the engine share, so a `loopNTimes` count that validates can
//! also run, and one that cannot is refused before anything runs.

mod flow_support;

use flow_support::*;
use serde_json::json;
use sluice_runtime::flow::{
    DEFAULT_MAX_STEP_RUNS, Definition, EngineOptions, ExecutionStatus, compile, compile_with,
};

/// A flow `f` whose only step loops `count` times over `body` (YAML, indented for
/// the loop's `steps:`).
fn looping(count: &str, body: &str) -> String {
    definition(&format!(
        "flows:\n  - key: f\n    steps:\n      - key: many\n        loopNTimes:\n          count: {count}\n          steps:\n{body}"
    ))
}

/// A body step that runs no sandbox: a branch on a value that never matches (and
/// cannot end the loop early, so validation counts every iteration).
const CHEAP: &str = "            - key: tick\n              branchOnValue:\n                value: 1\n                branches: [{name: Two, value: 2, steps: [{key: two, action: hello.echo}]}]\n                else: []\n";

#[tokio::test]
async fn a_count_the_default_cap_cannot_run_is_refused_at_validation() {
    assert_eq!(DEFAULT_MAX_STEP_RUNS, 10_000);
    let setup = setup().await;
    let body = "            - {key: tick, action: hello.echo}\n";
    let parsed = Definition::from_yaml(&looping("100000", body)).unwrap();
    let errors = compile(&parsed, &setup.catalog).unwrap_err().errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "flows[0].steps[0].loopNTimes.count");
    assert!(
        errors[0].message.contains(
            "runs at least 100001 steps, more than the 10000 step runs an execution may make"
        ) && errors[0].message.contains("--max-step-runs"),
        "{}",
        errors[0].message
    );
    // Nested loops multiply: 200 × (1 + 100 × 1) + 1 step runs.
    let nested = definition(
        "flows:\n  - key: f\n    steps:\n      - key: outer\n        loopNTimes:\n          count: 200\n          steps:\n            - key: inner\n              loopNTimes:\n                count: 100\n                steps: [{key: tick, action: hello.echo}]\n",
    );
    let errors = compile(&Definition::from_yaml(&nested).unwrap(), &setup.catalog)
        .unwrap_err()
        .errors;
    assert_eq!(errors[0].path, "flows[0].steps[0].loopNTimes.count");
    assert!(
        errors[0].message.contains("at least 20201 steps"),
        "{}",
        errors[0].message
    );
}

#[tokio::test]
async fn validation_and_the_engine_agree_on_a_raised_cap() {
    // 100,000 iterations of one step, plus the loop itself.
    let needed = 100_001;
    let setup = setup_with(|options| EngineOptions {
        max_step_runs: needed,
        ..options
    })
    .await;
    let definition = Definition::from_yaml(&looping("100000", CHEAP)).unwrap();
    // One step run short: refused before anything runs.
    let errors = compile_with(&definition, &setup.catalog, needed - 1)
        .unwrap_err()
        .errors;
    assert_eq!(errors[0].path, "flows[0].steps[0].loopNTimes.count");
    // Exactly enough: valid, and the engine with the same cap runs it to the end.
    let plan = compile_with(&definition, &setup.catalog, needed).expect("valid");
    let record = setup.run_plan(&plan, "f", json!({})).await;
    assert_eq!(
        record.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        record.error
    );
    assert_eq!(record.steps.len(), 1 + needed);
}

#[tokio::test]
async fn a_loop_that_may_end_early_is_left_to_the_engine() {
    // A `breakLoop` can end the loop before the cap: valid, and it runs.
    let setup = setup().await;
    let body = "            - key: stop\n              branchOnExpression:\n                branches:\n                  - {name: Done, condition: [equal, 3, {type: reference, value: many.index}], steps: [{key: out, breakLoop: {}}]}\n";
    let plan = setup.plan(&looping("1000000", body));
    let record = setup.run_plan(&plan, "f", json!({})).await;
    assert_eq!(
        record.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        record.error
    );
}

#[tokio::test]
async fn a_count_only_known_at_run_time_stops_at_the_cap() {
    // A count from the request cannot be checked at validation: the engine iterates
    // without materializing the count and stops at the cap with a `limit` error.
    let setup = setup_with(|options| EngineOptions {
        max_step_runs: 50,
        ..options
    })
    .await;
    let plan = setup.plan(&looping(
        "{type: reference, value: trigger.results.body.n}",
        CHEAP,
    ));
    let record = setup
        .run_plan(&plan, "f", json!({"n": 1_000_000_000_000u64}))
        .await;
    assert_eq!(record.status, ExecutionStatus::Failed);
    let error = record.error.as_ref().unwrap();
    assert_eq!(error.kind, "limit", "{error:?}");
    assert!(error.message.contains("more than 50 steps"), "{error:?}");
}
