//! Validation: a table of malformed definitions, each of which must be refused with
//! the right path and message before anything runs; and valid ones, in YAML and JSON,
//! including the example of `docs/flows.md`.

mod flow_support;

use flow_support::*;
use serde_json::json;
use sluice_runtime::flow::{Definition, ValidationError, compile, schema, validate};

/// Wraps one flow's steps (YAML, indented for `steps:`) into a definition with config
/// variable `Region`.
fn steps(yaml: &str) -> String {
    definition(&format!(
        "configVars:\n  - key: Region\n    defaultValue: eu\nflows:\n  - key: main\n    steps:\n{yaml}"
    ))
}

/// (name, definition, expected path, expected part of the message)
fn cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    vec![
        (
            "YAML syntax error",
            "definitionVersion: 1\nname: x\nflows: [\n".into(),
            "",
            "not valid YAML",
        ),
        (
            "steps is not a list",
            definition("flows:\n  - key: main\n    steps: 5\n"),
            "flows[0].steps",
            "invalid type: integer `5`, expected a sequence",
        ),
        (
            "unknown field",
            steps("      - {key: a, action: hello.echo, retries: 3}\n"),
            "flows[0].steps[0].retries",
            "unknown field `retries`, expected one of `key`, `name`",
        ),
        (
            "unsupported definition version",
            "definitionVersion: 2\nname: x\nflows:\n  - key: f\n    steps: [{key: a, action: hello.echo}]\n".into(),
            "definitionVersion",
            "unsupported definitionVersion 2",
        ),
        (
            "a management flow with a trigger",
            definition("flows:\n  - key: setup\n    on: instanceDeploy\n    trigger: {component: hello, trigger: webhook}\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].trigger",
            "takes no trigger",
        ),
        (
            "too many flow retries",
            definition("flows:\n  - key: f\n    retry: {attempts: 11}\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].retry.attempts",
            "retries must be between 1 and 10, not 11",
        ),
        (
            "a retry delay over 24 hours",
            definition("flows:\n  - key: f\n    retry: {attempts: 2, delayMinutes: 1441}\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].retry.delayMinutes",
            "at most 1440 minutes",
        ),
        (
            "a request id that is not in the request",
            definition("flows:\n  - key: f\n    retry: {attempts: 2, uniqueRequestId: cookies.id}\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].retry.uniqueRequestId",
            "is not a place in the request",
        ),
        (
            "a synchronous FIFO flow",
            definition("flows:\n  - key: f\n    synchronous: true\n    queue: {fifo: true}\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].queue.fifo",
            "cannot also be `synchronous`",
        ),
        (
            "a dedupe id without FIFO",
            definition("flows:\n  - key: f\n    queue: {fifo: false, dedupeId: body.id}\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].queue.dedupeId",
            "set `fifo: true`",
        ),
        (
            "a retried management flow",
            definition("flows:\n  - key: f\n    on: instanceDeploy\n    retry: {attempts: 2}\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].retry",
            "is not queued",
        ),
        (
            "a singleton without a schedule",
            definition("flows:\n  - key: f\n    singleton: true\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].singleton",
            "has no `schedule`",
        ),
        (
            "a time limit of zero",
            definition("flows:\n  - key: f\n    timeLimitSeconds: 0\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].timeLimitSeconds",
            "between 1 and 86400 seconds, not 0",
        ),
        (
            "a synchronous management flow",
            definition("flows:\n  - key: setup\n    on: instanceRemove\n    synchronous: true\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].synchronous",
            "no webhook to answer synchronously",
        ),
        (
            "an unknown instance event",
            definition("flows:\n  - key: setup\n    on: instanceUpgrade\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].on",
            "unknown variant `instanceUpgrade`",
        ),
        (
            "no flows",
            definition("flows: []\n"),
            "flows",
            "an integration needs at least one flow",
        ),
        (
            "duplicate flow key",
            definition("flows:\n  - key: f\n    steps: [{key: a, action: hello.echo}]\n  - key: f\n    steps: [{key: b, action: hello.echo}]\n"),
            "flows[1].key",
            "duplicate flow key `f`",
        ),
        (
            "component version not in the catalog",
            "definitionVersion: 1\nname: x\ncomponents:\n  hello: {version: \"9.9.9\"}\nflows:\n  - key: f\n    steps: [{key: a, action: hello.echo}]\n".into(),
            "components.hello.version",
            "unknown component `hello` version `9.9.9`: the catalog has versions 0.1.0",
        ),
        (
            "pinned hash does not match",
            format!(
                "definitionVersion: 1\nname: x\ncomponents:\n  hello: {{version: \"0.1.0\", hash: \"{}\"}}\nflows:\n  - key: f\n    steps: [{{key: a, action: hello.echo}}]\n",
                "ab".repeat(32)
            ),
            "components.hello.hash",
            "not the pinned",
        ),
        (
            "unknown component",
            steps("      - {key: a, action: zendesk.createTicket}\n"),
            "flows[0].steps[0].action",
            "unknown component `zendesk`: it is not pinned in `components`",
        ),
        (
            "unknown action",
            steps("      - {key: a, action: hello.shout}\n"),
            "flows[0].steps[0].action",
            "unknown action `shout` of component `hello`",
        ),
        (
            "action without a component",
            steps("      - {key: a, action: echo}\n"),
            "flows[0].steps[0].action",
            "`echo` is not `component.action`",
        ),
        (
            "input not in the action's schema",
            steps("      - {key: a, action: hello.recall, inputs: {scope: flow, key: k, ticketId: 1}}\n"),
            "flows[0].steps[0].inputs.ticketId",
            "`ticketId` is not an input of `hello.recall` (its inputs: key, scope)",
        ),
        (
            "missing required input",
            steps("      - {key: a, action: hello.recall, inputs: {scope: flow}}\n"),
            "flows[0].steps[0].inputs",
            "missing required input `key` of `hello.recall`",
        ),
        (
            "value outside the input's schema",
            steps("      - {key: a, action: hello.recall, inputs: {scope: galaxy, key: k}}\n"),
            "flows[0].steps[0].inputs.scope",
            "does not match the input schema of `hello.recall`",
        ),
        (
            "reference to a later step",
            steps("      - {key: a, action: hello.echo, inputs: {x: {type: reference, value: b.results.id}}}\n      - {key: b, action: hello.echo}\n"),
            "flows[0].steps[0].inputs.x",
            "reference to step `b`, which does not precede this step",
        ),
        (
            "reference to an unknown step",
            steps("      - {key: a, action: hello.echo, inputs: {ticketId: {type: reference, value: createTicket.results.id}}}\n"),
            "flows[0].steps[0].inputs.ticketId",
            "reference to unknown step `createTicket`",
        ),
        (
            "reference into another branch",
            steps(concat!(
                "      - key: route\n",
                "        branchOnValue:\n",
                "          value: 1\n",
                "          branches:\n",
                "            - {name: One, value: 1, steps: [{key: inOne, action: hello.echo}]}\n",
                "            - {name: Two, value: 2, steps: [{key: inTwo, action: hello.echo, inputs: {x: {type: reference, value: inOne.results}}}]}\n",
            )),
            "flows[0].steps[0].branchOnValue.branches[1].steps[0].inputs.x",
            "reference to step `inOne`, which does not precede this step",
        ),
        (
            "currentItem outside its loop",
            steps(concat!(
                "      - key: each\n",
                "        loopOverItems: {items: {type: value, value: [1]}, steps: [{key: a, action: hello.echo}]}\n",
                "      - {key: b, action: hello.echo, inputs: {x: {type: reference, value: each.currentItem}}}\n",
            )),
            "flows[0].steps[1].inputs.x",
            "`each.currentItem` is only available inside the loop `each`",
        ),
        (
            "a loop's own results inside the loop",
            steps(concat!(
                "      - key: each\n",
                "        loopOverItems: {items: {type: value, value: [1]}, steps: [{key: a, action: hello.echo, inputs: {x: {type: reference, value: each.results}}}]}\n",
            )),
            "flows[0].steps[0].loopOverItems.steps[0].inputs.x",
            "step `each` has not finished when this step runs",
        ),
        (
            "malformed reference",
            steps("      - {key: a, action: hello.echo, inputs: {x: {type: reference, value: trigger.result.body}}}\n"),
            "flows[0].steps[0].inputs.x",
            "after `trigger.` comes `results`, `branch`, `currentItem` or `index`, not `result`",
        ),
        (
            "unknown config variable",
            steps("      - {key: a, action: hello.echo, inputs: {x: {type: configVar, value: Regoin}}}\n"),
            "flows[0].steps[0].inputs.x",
            "unknown config variable `Regoin` (declared: Region)",
        ),
        (
            "unknown config variable in a template",
            steps("      - {key: a, action: hello.echo, inputs: {url: {type: template, value: \"{{#Api Base}}/tickets\"}}}\n"),
            "flows[0].steps[0].inputs.url",
            "unknown config variable `Api Base`",
        ),
        (
            "unclosed template",
            steps("      - {key: a, action: hello.echo, inputs: {x: {type: template, value: \"gh-{{trigger.results.body.n\"}}}\n"),
            "flows[0].steps[0].inputs.x",
            "malformed template: `{{` at byte 3 is never closed",
        ),
        (
            "unknown operator",
            steps("      - key: a\n        branchOnExpression:\n          branches:\n            - {name: Yes, condition: [eq, 1, 1], steps: []}\n"),
            "flows[0].steps[0].branchOnExpression.branches[0].condition[0]",
            "invalid expression syntax: unknown operator `eq`",
        ),
        (
            "wrong number of terms",
            steps("      - key: a\n        branchOnExpression:\n          branches:\n            - {name: Yes, condition: [and, [exists, 1, 2]], steps: []}\n"),
            "flows[0].steps[0].branchOnExpression.branches[0].condition[1]",
            "`exists` takes 1 term, got 2",
        ),
        (
            "condition that is not a list",
            steps("      - key: a\n        branchOnExpression:\n          branches:\n            - {name: Yes, condition: \"1 == 1\", steps: []}\n"),
            "flows[0].steps[0].branchOnExpression.branches[0].condition",
            "invalid expression syntax: a condition is a list",
        ),
        (
            "duplicate step key",
            steps("      - {key: a, action: hello.echo}\n      - {key: a, action: hello.echo}\n"),
            "flows[0].steps[1].key",
            "duplicate step key `a`",
        ),
        (
            "invalid step key",
            steps("      - {key: create.ticket, action: hello.echo}\n"),
            "flows[0].steps[0].key",
            "invalid key `create.ticket`",
        ),
        (
            "reserved step key",
            steps("      - {key: trigger, action: hello.echo}\n"),
            "flows[0].steps[0].key",
            "`trigger` is reserved",
        ),
        (
            "a step with two kinds",
            steps("      - {key: a, action: hello.echo, breakLoop: {}}\n"),
            "flows[0].steps[0]",
            "a step does one thing, but this one sets `action` and `breakLoop`",
        ),
        (
            "a step with no kind",
            steps("      - {key: a}\n"),
            "flows[0].steps[0]",
            "a step needs one of `action`",
        ),
        (
            "breakLoop outside a loop",
            steps("      - {key: a, breakLoop: {}}\n"),
            "flows[0].steps[0].breakLoop",
            "`breakLoop` is only allowed inside a loop",
        ),
        (
            "too many retries",
            steps("      - {key: a, action: hello.echo, errorConfig: {errorHandlerType: retry, maxAttempts: 7}}\n"),
            "flows[0].steps[0].errorConfig.maxAttempts",
            "`maxAttempts` is 0 to 5, got 7",
        ),
        (
            "delay too long",
            steps("      - {key: a, action: hello.echo, errorConfig: {errorHandlerType: retry, delaySeconds: 61}}\n"),
            "flows[0].steps[0].errorConfig.delaySeconds",
            "`delaySeconds` is 0 to 60, got 61",
        ),
        (
            "retry settings without retry",
            steps("      - {key: a, action: hello.echo, errorConfig: {errorHandlerType: ignore, maxAttempts: 2}}\n"),
            "flows[0].steps[0].errorConfig.maxAttempts",
            "`maxAttempts` applies only when `errorHandlerType` is `retry`",
        ),
        (
            "error config on a control step",
            steps("      - key: l\n        errorConfig: {errorHandlerType: ignore}\n        loopNTimes: {count: 1, steps: [{key: a, action: hello.echo}]}\n"),
            "flows[0].steps[0].errorConfig",
            "`errorConfig` applies to action, code and `invokeFlow` steps only",
        ),
        (
            "duplicate branch names",
            steps("      - key: r\n        branchOnValue:\n          value: 1\n          branches:\n            - {name: A, value: 1}\n            - {name: A, value: 2}\n"),
            "flows[0].steps[0].branchOnValue.branches[1].name",
            "duplicate branch name `A`",
        ),
        (
            "a branch named Else",
            steps("      - key: r\n        branchOnValue:\n          value: 1\n          branches:\n            - {name: Else, value: 1}\n"),
            "flows[0].steps[0].branchOnValue.branches[0].name",
            "`Else` is the name of the `else` branch",
        ),
        (
            "negative loop count",
            steps("      - key: l\n        loopNTimes: {count: -1, steps: [{key: a, action: hello.echo}]}\n"),
            "flows[0].steps[0].loopNTimes.count",
            "`count` must be a whole number of 0 or more, got -1",
        ),
        (
            "items that are not a list",
            steps("      - key: l\n        loopOverItems: {items: {type: value, value: {a: 1}}, steps: [{key: a, action: hello.echo}]}\n"),
            "flows[0].steps[0].loopOverItems.items",
            "`items` must be a list",
        ),
        (
            "stop with a bad status",
            steps("      - {key: s, stopExecution: {status: 99}}\n"),
            "flows[0].steps[0].stopExecution.status",
            "`status` must be an HTTP status from 100 to 599, got 99",
        ),
        (
            "config variable key with a dot",
            definition("configVars:\n  - key: MyApp.com Connection\nflows:\n  - key: f\n    steps: [{key: a, action: hello.echo}]\n"),
            "configVars[0].key",
            "`.` is not allowed",
        ),
        (
            "code flow with steps",
            definition("flows:\n  - key: f\n    code: {component: hello-flow}\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].steps",
            "a code-native flow (`code`) has no steps",
        ),
        (
            "code flow naming a component",
            definition("flows:\n  - key: f\n    code: {component: hello}\n"),
            "flows[0].code.component",
            "`hello` is a component (world `component`), not a code-native flow",
        ),
        (
            "action of a code-native flow",
            steps("      - {key: a, action: hello-flow.run}\n"),
            "flows[0].steps[0].action",
            "`hello-flow` is a code-native flow (world `flow`), not a component with actions",
        ),
        (
            "unknown trigger",
            definition("flows:\n  - key: f\n    trigger: {component: hello, trigger: poll}\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].trigger.trigger",
            "unknown trigger `poll` of component `hello` (its triggers: webhook)",
        ),
        (
            "trigger input referencing a step",
            definition("flows:\n  - key: f\n    trigger: {component: hello, trigger: webhook, inputs: {x: {type: reference, value: a.results}}}\n    steps: [{key: a, action: hello.echo}]\n"),
            "flows[0].trigger.inputs.x",
            "reference to unknown step `a`",
        ),
        (
            "a step without key or name",
            steps("      - {action: hello.echo}\n"),
            "flows[0].steps[0]",
            "needs a `key` (or a `name` to derive the key from)",
        ),
        (
            "an input that is a bare list",
            steps("      - {key: a, action: hello.echo, inputs: {x: [1, 2]}}\n"),
            "flows[0].steps[0].inputs.x",
            "a list must be written as `{type: complex, value: [...]}`",
        ),
    ]
}

#[tokio::test]
async fn malformed_definitions_are_refused_with_path_and_message() {
    let setup = setup().await;
    let cases = cases();
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (name, text, path, message) in &cases {
        let errors: Vec<ValidationError> = match setup.compile(text) {
            Ok(_) => {
                failures.push(format!("{name}: compiled, but should not"));
                continue;
            }
            Err(invalid) => invalid.errors,
        };
        let found = errors
            .iter()
            .any(|error| error.path == *path && error.message.contains(message));
        if !found {
            failures.push(format!(
                "{name}: expected `{path}: …{message}…`, got {:#?}",
                errors
                    .iter()
                    .map(|error| error.to_string())
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_error_of_a_definition_is_reported_at_once() {
    let setup = setup().await;
    let text = steps(concat!(
        "      - {key: a, action: hello.shout}\n",
        "      - {key: b, action: hello.echo, inputs: {x: {type: configVar, value: Nope}}}\n",
        "      - {key: c, breakLoop: {}}\n",
    ));
    let errors = setup.compile(&text).unwrap_err().errors;
    let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "flows[0].steps[0].action",
            "flows[0].steps[1].inputs.x",
            "flows[0].steps[2].breakLoop"
        ]
    );
}

#[test]
fn structure_is_checked_without_a_catalog() {
    // No components are known, so only what does not depend on them is checked.
    let definition = Definition::from_yaml(&steps(
        "      - {key: a, action: hello.echo, inputs: {x: {type: reference, value: z.results}}}\n",
    ))
    .unwrap();
    let errors = validate(&definition, None).unwrap_err().errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "flows[0].steps[0].inputs.x");
    let definition =
        Definition::from_yaml(&steps("      - {key: a, action: hello.shout}\n")).unwrap();
    assert!(validate(&definition, None).is_ok());
}

#[tokio::test]
async fn yaml_and_json_definitions_compile_alike() {
    let setup = setup().await;
    let yaml = steps(
        "      - {name: First Step, action: hello.echo, inputs: {region: {type: configVar, value: Region}}}\n",
    );
    let from_yaml = Definition::from_yaml(&yaml).unwrap();
    let json_text = serde_json::to_string_pretty(&from_yaml.to_json_value()).unwrap();
    let from_json = Definition::from_json(&json_text).unwrap();
    assert_eq!(from_yaml, from_json);
    let plan = compile(&from_json, &setup.catalog).unwrap();
    assert_eq!(plan.flow_keys(), ["main"]);
    // Publishing records the hash each pin resolved to.
    let pins = plan.pins();
    assert_eq!(pins["hello"].0, "0.1.0");
    let bytes = std::fs::read(sluice_runtime::guest_build::example("hello").unwrap()).unwrap();
    assert_eq!(pins["hello"].1, sluice_runtime::ContentHash::of(&bytes));
    let record = setup.run_plan(&plan, "main", json!({})).await;
    assert_eq!(result(&record, "firstStep"), json!({"region": "eu"}));
}

/// The YAML examples of `docs/flows.md` parse, follow the published schema, and
/// compile against the example guests.
#[tokio::test]
async fn the_documented_examples_are_valid() {
    let setup = setup().await;
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/flows.md"))
        .expect("docs/flows.md");
    let validator = jsonschema::validator_for(&schema::definition_schema()).unwrap();
    let mut examples = 0;
    for block in docs.split("```yaml\n").skip(1) {
        let Some(end) = block.find("```") else {
            continue;
        };
        let text = &block[..end];
        if !text.starts_with("definitionVersion:") {
            continue;
        }
        examples += 1;
        let definition = Definition::from_yaml(text).unwrap_or_else(|err| panic!("{err}\n{text}"));
        let value = definition.to_json_value();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        setup
            .compile(text)
            .unwrap_or_else(|err| panic!("{err}\n{text}"));
    }
    assert!(examples >= 1, "no complete example in docs/flows.md");
}

#[tokio::test]
async fn a_bad_reference_in_a_condition_points_at_its_term() {
    let setup = setup().await;
    let text = steps(concat!(
        "      - key: a\n",
        "        branchOnExpression:\n",
        "          branches:\n",
        "            - name: Yes\n",
        "              condition: [or, [equal, 1, 1], [and, [exists, 1], [equal, 2, {type: reference, value: nope.results}]]]\n",
        "              steps: [{key: b, action: hello.echo}]\n",
        "            - {name: No, condition: [exists, {type: configVar, value: Regoin}], steps: [{key: c, action: hello.echo}]}\n",
    ));
    let errors = setup.compile(&text).unwrap_err().errors;
    let found: Vec<(&str, &str)> = errors
        .iter()
        .map(|error| (error.path.as_str(), error.message.as_str()))
        .collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(
        found[0].0,
        "flows[0].steps[0].branchOnExpression.branches[0].condition[2][2][2]"
    );
    assert!(found[0].1.contains("unknown step `nope`"), "{found:#?}");
    assert_eq!(
        found[1].0,
        "flows[0].steps[0].branchOnExpression.branches[1].condition[1]"
    );
    assert!(
        found[1].1.contains("unknown config variable `Regoin`"),
        "{found:#?}"
    );
}

#[test]
fn messages_name_the_problem_not_the_parser_library() {
    let cases = [
        (
            "duplicate YAML key",
            "definitionVersion: 1\nname: x\nname: y\nflows: [{key: f, steps: [{key: a, action: hello.echo}]}]\n",
            "",
            "duplicate key `name`",
        ),
        (
            "version as a string",
            "definitionVersion: \"1\"\nname: x\nflows: [{key: f, steps: [{key: a, action: hello.echo}]}]\n",
            "definitionVersion",
            "expected a whole number from 0 to 4294967295",
        ),
        (
            "negative retry count",
            "definitionVersion: 1\nname: x\nflows: [{key: f, steps: [{key: a, action: hello.echo, errorConfig: {errorHandlerType: retry, maxAttempts: -1}}]}]\n",
            "flows[0].steps[0].errorConfig.maxAttempts",
            "expected a whole number from 0 to 4294967295",
        ),
        (
            "fractional time limit",
            "definitionVersion: 1\nname: x\nflows: [{key: f, timeLimitSeconds: 1.5, steps: [{key: a, action: hello.echo}]}]\n",
            "flows[0].timeLimitSeconds",
            "expected a whole number from 0 to 18446744073709551615",
        ),
    ];
    for (name, text, path, message) in cases {
        let errors = Definition::from_yaml(text)
            .err()
            .unwrap_or_else(|| panic!("{name}: parsed"))
            .errors;
        let error = &errors[0];
        assert_eq!(error.path, path, "{name}: {error}");
        assert!(error.message.contains(message), "{name}: {error}");
        for internal in ["DuplicateKeyPolicy", "Options", "u32", "u64", "Depth {"] {
            assert!(!error.message.contains(internal), "{name}: {error}");
        }
    }
}
