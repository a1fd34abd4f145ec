//! Inline JavaScript code steps: the real code engine (`runtime/code-engine`, built
//! with componentize-js) runs each step's function in a sandbox of its own, with the
//! results before it, the instance's config and state, and typed outcomes for what
//! goes wrong; a syntax error is found at publish time with the step's path.

mod flow_support;

use flow_support::*;
use serde_json::json;
use sluice_runtime::flow::{ComponentCatalog, StepErrorKind, StepKind, check_code_steps};
use sluice_runtime::guest_build::code_engine::code_engine;
use sluice_runtime::{Limits, StateNamespace};

/// The engine is 13 MB of JavaScript runtime: compiled once into an artifact cache the
/// tests of this file share, not once per test.
async fn setup_with_engine() -> Setup {
    let cache = sluice_runtime::guest_build::guest_target_dir().join("code-engine-artifacts");
    let runtime = sluice_runtime::Runtime::new(
        sluice_runtime::RuntimeConfig::default()
            .max_concurrency(8)
            .tenant_parallelism(1)
            .busy_wait(std::time::Duration::from_secs(10))
            .cache_dir(cache),
    )
    .unwrap();
    let mut setup = setup_on(runtime, |options| options).await;
    let bytes = std::fs::read(code_engine().unwrap_or_else(|err| panic!("{err}"))).unwrap();
    let runtime = setup.runtime.clone();
    let engine = tokio::task::spawn_blocking(move || runtime.load(&bytes))
        .await
        .unwrap()
        .unwrap();
    setup
        .catalog
        .set_code_engine(&setup.runtime, engine)
        .await
        .unwrap();
    setup
}

fn code_flow(code: &str) -> String {
    let indented: String = code
        .lines()
        .map(|line| format!("          {line}\n"))
        .collect();
    definition(&format!(
        "flows:\n  - key: coded\n    steps:\n      - key: echo\n        action: hello.echo\n        inputs:\n          n: 4\n      - key: shape\n        code: |\n{indented}"
    ))
}

#[tokio::test]
async fn a_code_step_reads_earlier_results_and_writes_state() {
    let setup = setup_with_engine().await;
    let yaml = code_flow(
        r#"async (context, stepResults) => {
  context.logger.info("shaping", stepResults.echo.results.n);
  console.log("to stdout");
  const seen = (context.instanceState.seen ?? 0) + 1;
  return {
    data: {
      title: stepResults.trigger.results.body.title.toUpperCase(),
      n: stepResults.echo.results.n * 10,
      flow: context.flow.name,
      seen,
    },
    instanceState: { seen },
  };
}"#,
    );
    let plan = setup.plan(&yaml);
    assert_eq!(plan.code_steps().len(), 1);
    assert_eq!(plan.code_steps()[0].path, "flows[0].steps[1].code");
    for seen in [1, 2] {
        let record = setup
            .run_plan(&plan, "coded", json!({"title": "gh-13"}))
            .await;
        assert!(record.succeeded(), "{record:#?}");
        assert_eq!(
            result(&record, "shape"),
            json!({"title": "GH-13", "n": 40, "flow": "coded", "seen": seen})
        );
        let step = record.step("shape").unwrap();
        assert_eq!(step.kind, StepKind::Action);
        assert!(step.fuel_used > 0 && step.peak_memory_bytes > 0);
        let messages: Vec<&str> = step.logs.iter().map(|log| log.message.as_str()).collect();
        assert_eq!(messages, ["shaping 4", "to stdout"], "{:#?}", step.logs);
    }
    let flow = StateNamespace::Flow {
        tenant: "tenant-a".into(),
        instance: "instance-1".into(),
        flow: "coded".into(),
    };
    assert_eq!(setup.state.value(&flow, "seen").as_deref(), Some("2"));
}

#[tokio::test]
async fn a_code_step_in_a_loop_sees_the_current_item() {
    let setup = setup_with_engine().await;
    let yaml = definition(
        r#"flows:
  - key: looped
    steps:
      - key: each
        loopOverItems:
          items: {type: reference, value: trigger.results.body.items}
          steps:
            - key: double
              code: "(context, stepResults) => stepResults.each.currentItem * 2 + stepResults.each.index"
"#,
    );
    let record = setup
        .run(&yaml, "looped", json!({"items": [1, 10, 100]}))
        .await;
    assert!(record.succeeded(), "{record:#?}");
    assert_eq!(result(&record, "each"), json!([2, 21, 202]));
}

#[tokio::test]
async fn a_syntax_error_is_found_before_anything_runs() {
    let setup = setup_with_engine().await;
    let yaml = code_flow("(context, stepResults) => {\n  return { data: 1 +  };\n}");
    let plan = setup.plan(&yaml);
    let engine = setup.catalog.code_engine().unwrap();
    let errors = check_code_steps(&setup.runtime, &engine, plan.code_steps()).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "flows[0].steps[1].code");
    assert!(
        errors[0].message.contains("syntax error") && errors[0].message.contains("line 2"),
        "{}",
        errors[0].message
    );
    let fine = code_flow("() => 1");
    let errors = check_code_steps(&setup.runtime, &engine, setup.plan(&fine).code_steps()).await;
    assert!(errors.is_empty(), "{errors:?}");
    // Several steps are checked in one call, each error at its own step.
    let several = definition(
        "flows:\n  - key: many\n    steps:\n      - {key: good, code: \"() => 1\"}\n      - {key: bad, code: \"() => {\"}\n      - {key: fine, code: \"(c, s) => s.good.results\"}\n",
    );
    let plan = setup.plan(&several);
    assert_eq!(plan.code_steps().len(), 3);
    let errors = check_code_steps(&setup.runtime, &engine, plan.code_steps()).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "flows[0].steps[1].code");
    assert!(
        errors[0].message.contains("syntax error"),
        "{}",
        errors[0].message
    );
}

#[tokio::test]
async fn without_an_engine_a_code_step_is_refused_at_its_path() {
    let setup = setup().await;
    let err = setup.compile(&code_flow("() => 1")).unwrap_err();
    assert_eq!(err.errors.len(), 1, "{err}");
    assert_eq!(err.errors[0].path, "flows[0].steps[1].code");
    assert!(err.errors[0].message.contains("--code-engine"), "{err}");
    let err = setup.compile(&code_flow("   ")).unwrap_err();
    assert!(err.errors[0].message.contains("empty"), "{err}");
}

/// What the step's function throws or does wrong ends the step with its typed kind.
#[tokio::test]
async fn hostile_code_ends_with_typed_outcomes() {
    let mut setup = setup_with_engine().await;
    setup.env.limits = Limits::default()
        .fuel(400_000_000)
        .memory_bytes(48 << 20)
        .timeout(std::time::Duration::from_secs(20));
    let cases: [(&str, StepErrorKind, &str); 5] = [
        ("() => { while (true) {} }", StepErrorKind::OutOfFuel, ""),
        (
            "() => { const hoard = []; while (true) { hoard.push(new ArrayBuffer(1 << 22)); } }",
            StepErrorKind::MemoryLimit,
            "",
        ),
        (
            "() => { const deeper = (n) => deeper(n + 1) + 1; return deeper(0); }",
            StepErrorKind::Fatal,
            "too much recursion",
        ),
        (
            "() => { throw new TypeError('no ticket') }",
            StepErrorKind::Fatal,
            "TypeError: no ticket",
        ),
        ("42", StepErrorKind::InvalidInput, "must be a function"),
    ];
    for (code, kind, message) in cases {
        let record = setup.run(&code_flow(code), "coded", json!({})).await;
        assert!(!record.succeeded(), "{code}: {record:#?}");
        let step = record.step("shape").unwrap();
        let error = step.attempts[0].error.as_ref().unwrap();
        assert_eq!(error.kind, kind, "{code}: {error:?}");
        assert!(error.message.contains(message), "{code}: {error:?}");
    }
    // The same engine runs a good step right after.
    setup.env.limits = Limits::default();
    let record = setup
        .run(&code_flow("() => 'fine'"), "coded", json!({}))
        .await;
    assert!(record.succeeded(), "{record:#?}");
    assert_eq!(result(&record, "shape"), json!("fine"));
}

/// The function reaches the outside only as its instance may: no allow-list, no HTTP.
#[tokio::test]
async fn fetch_is_refused_without_an_allow_list() {
    let setup = setup_with_engine().await;
    let code = r#"async () => {
  try {
    await fetch("http://127.0.0.1:9/");
    return "reached";
  } catch (error) {
    return `refused: ${error}`;
  }
}"#;
    let record = setup.run(&code_flow(code), "coded", json!({})).await;
    assert!(record.succeeded(), "{record:#?}");
    let answer = result(&record, "shape");
    assert!(
        answer.as_str().unwrap().starts_with("refused: "),
        "{answer}"
    );
}
