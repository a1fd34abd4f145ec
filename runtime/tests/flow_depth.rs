//! How deep a definition may nest: 64 levels of steps in YAML and in JSON alike (the
//! same limit, the same error naming the step past it), and a document nested past
//! the parsers' limit refused with the same message in both syntaxes.

mod flow_support;

use flow_support::*;
use serde_json::{Value, json};
use sluice_runtime::flow::{Definition, ExecutionStatus, Format};

/// The documented limits (`docs/flows.md`), written out so that a change to the
/// constants behind them (`flow::MAX_STEP_DEPTH`, `flow::MAX_DOCUMENT_DEPTH`) has to
/// change the docs and this test too.
const MAX_STEP_DEPTH: usize = 64;
const MAX_DOCUMENT_DEPTH: usize = 512;

/// One flow whose steps nest `levels` deep: each level is a branch or a loop (in
/// turn) holding the next level; the innermost step stops the execution with 201.
fn nested(levels: usize) -> Value {
    let mut step = json!({"key": format!("s{levels}"), "stopExecution": {"status": 201}});
    for level in (1..levels).rev() {
        let key = format!("s{level}");
        step = match level % 3 {
            0 => json!({"key": key, "branchOnValue": {
                "value": 1,
                "branches": [{"name": "One", "value": 1, "steps": [step]}],
                "else": []
            }}),
            1 => json!({"key": key, "branchOnExpression": {
                "branches": [{"name": "Yes", "condition": ["equal", 1, 1], "steps": [step]}]
            }}),
            _ => json!({"key": key, "loopNTimes": {"count": 1, "steps": [step]}}),
        };
    }
    json!({
        "definitionVersion": 1,
        "name": "Deep",
        "components": {"hello": {"version": "0.1.0"}, "hello-flow": {"version": "0.0.0"}},
        "flows": [{"key": "deep", "steps": [step]}]
    })
}

/// `value` as block-style YAML (what a designer writes, and what the YAML parser's
/// own depth budget used to refuse at 11 levels of branches).
fn block_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 || !out.ends_with("- ") {
                    out.push_str(&pad);
                }
                out.push_str(key);
                out.push(':');
                scalar_or_nested(item, indent + 2, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push_str("- ");
                match item {
                    Value::Object(map) if !map.is_empty() => block_yaml(item, indent + 2, out),
                    other => {
                        out.push_str(&other.to_string());
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

fn scalar_or_nested(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            block_yaml(value, indent, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            block_yaml(value, indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

fn yaml(value: &Value) -> String {
    let mut out = String::new();
    block_yaml(value, 0, &mut out);
    out
}

/// The path of the first step at `level` (1 is a top-level step).
fn step_path(level: usize) -> String {
    let mut path = "flows[0].steps[0]".to_string();
    for above in 1..level {
        path.push_str(match above % 3 {
            0 => ".branchOnValue.branches[0].steps[0]",
            1 => ".branchOnExpression.branches[0].steps[0]",
            _ => ".loopNTimes.steps[0]",
        });
    }
    path
}

#[test]
fn the_generated_yaml_is_the_same_definition_as_the_json() {
    let value = nested(5);
    let from_yaml = Definition::parse(&yaml(&value), Format::Yaml).expect("yaml parses");
    let from_json = Definition::parse(&value.to_string(), Format::Json).expect("json parses");
    assert_eq!(from_yaml, from_json);
}

#[tokio::test]
async fn sixty_four_levels_of_steps_parse_compile_and_run_in_yaml_and_json() {
    let setup = setup().await;
    let value = nested(MAX_STEP_DEPTH);
    for (format, text) in [
        (Format::Yaml, yaml(&value)),
        (Format::Json, value.to_string()),
    ] {
        let definition =
            Definition::parse(&text, format).unwrap_or_else(|err| panic!("{format:?}: {err}"));
        let plan = sluice_runtime::flow::compile(&definition, &setup.catalog)
            .unwrap_or_else(|err| panic!("{format:?}: {err}"));
        let record = setup.run_plan(&plan, "deep", json!({})).await;
        assert_eq!(record.status, ExecutionStatus::Succeeded, "{format:?}");
        // Every level ran, down to the stop at the bottom.
        assert!(
            record.step("s64").is_some(),
            "{format:?}: {:?}",
            keys(&record)
        );
        assert_eq!(
            record.response.as_ref().map(|response| response.status),
            Some(201)
        );
    }
}

#[test]
fn one_level_more_is_refused_alike_in_yaml_and_json_naming_the_step() {
    let value = nested(MAX_STEP_DEPTH + 1);
    let from_yaml = Definition::parse(&yaml(&value), Format::Yaml).unwrap_err();
    let from_json = Definition::parse(&value.to_string(), Format::Json).unwrap_err();
    assert_eq!(from_yaml, from_json);
    let error = &from_yaml.errors[0];
    assert_eq!(error.path, step_path(MAX_STEP_DEPTH + 1));
    assert!(
        error
            .message
            .contains("steps nest 65 levels deep here; at most 64 levels of steps"),
        "{error}"
    );
    // Far deeper still: the same answer, at the first step past the limit.
    let value = nested(90);
    let from_yaml = Definition::parse(&yaml(&value), Format::Yaml).unwrap_err();
    let from_json = Definition::parse(&value.to_string(), Format::Json).unwrap_err();
    assert_eq!(from_yaml, from_json);
    assert_eq!(from_yaml.errors[0].path, step_path(MAX_STEP_DEPTH + 1));
}

#[test]
fn a_document_nested_past_the_parsers_limit_is_refused_alike() {
    // A literal input nested far past any sensible depth: refused by the parser's
    // budget with the same message in both syntaxes, not a stack overflow or a
    // library's internal error.
    let deep = |levels: usize| {
        let mut value = json!(1);
        for _ in 0..levels {
            value = json!({"a": value});
        }
        json!({
            "definitionVersion": 1, "name": "x",
            "components": {"hello": {"version": "0.1.0"}},
            "flows": [{"key": "f", "steps": [{"key": "a", "action": "hello.echo",
                "inputs": {"x": {"type": "value", "value": value}}}]}]
        })
    };
    let value = deep(MAX_DOCUMENT_DEPTH + 10);
    let from_json = Definition::parse(&value.to_string(), Format::Json).unwrap_err();
    let from_yaml = Definition::parse(&yaml(&value), Format::Yaml).unwrap_err();
    for error in [&from_json.errors[0], &from_yaml.errors[0]] {
        assert_eq!(
            error.message,
            format!(
                "the document nests lists and objects more than {MAX_DOCUMENT_DEPTH} levels deep"
            ),
            "{error:?}"
        );
        assert!(error.line.is_some(), "{error:?}");
    }
    // Just inside the limit, both parse.
    let value = deep(MAX_DOCUMENT_DEPTH - 10);
    Definition::parse(&value.to_string(), Format::Json).expect("json at the limit");
    Definition::parse(&yaml(&value), Format::Yaml).expect("yaml at the limit");
}
