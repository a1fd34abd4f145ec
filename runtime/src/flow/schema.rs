//! The JSON Schema (draft 2020-12) of the definition format, published as
//! `docs/flow-definition.schema.json` for editors and designers. Tests keep it equal
//! to the published file and check it against the serde types field by field.

use serde_json::{Value, json};

use super::expression::Operator;

/// Where the schema is published, relative to the repository root.
pub const SCHEMA_PATH: &str = "docs/flow-definition.schema.json";

/// An object naming something a pinned component declares: `{component, key}`.
fn component_item(description: &str) -> Value {
    json!({
        "description": description,
        "type": "object",
        "additionalProperties": false,
        "required": ["component", "key"],
        "properties": {
            "component": {"type": "string", "minLength": 1},
            "key": {"type": "string", "minLength": 1}
        }
    })
}

/// The schema of a definition document.
pub fn definition_schema() -> Value {
    let unary: Vec<&str> = Operator::ALL
        .iter()
        .filter(|op| op.is_unary())
        .map(|op| op.key())
        .collect();
    let binary: Vec<&str> = Operator::ALL
        .iter()
        .filter(|op| !op.is_unary())
        .map(|op| op.key())
        .collect();
    let step_kinds = [
        "action",
        "code",
        "branchOnValue",
        "branchOnExpression",
        "loopOverItems",
        "loopNTimes",
        "breakLoop",
        "stopExecution",
        "invokeFlow",
    ];
    // Added to `$defs` after the fact: one more entry in the `json!` below would pass
    // the macro's recursion limit.
    let schedule = json!({
        "description": "Also run on a schedule: `cron` (5 fields, or 6 with seconds first) in `timezone` (IANA, default UTC), or `configVar`, a config variable of data type `schedule` that each instance sets to a cron string or `{cron, timezone}`.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "cron": {"type": "string", "minLength": 1},
            "timezone": {"type": "string", "minLength": 1},
            "configVar": {"type": "string", "minLength": 1}
        },
        "oneOf": [
            {"required": ["cron"], "not": {"required": ["configVar"]}},
            {
                "required": ["configVar"],
                "not": {"anyOf": [{"required": ["cron"]}, {"required": ["timezone"]}]}
            }
        ]
    });
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.invalid/sluice/flow-definition.schema.json",
        "title": "Sluice integration definition",
        "description": "An integration: pinned components, config variables and flows. See docs/flows.md.",
        "type": "object",
        "additionalProperties": false,
        "required": ["definitionVersion", "name", "flows"],
        "properties": {
            "definitionVersion": {"const": 1},
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "components": {
                "description": "The components the flows use, by component key, each pinned to one version.",
                "type": "object",
                "propertyNames": {"pattern": "^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$"},
                "additionalProperties": {"$ref": "#/$defs/componentPin"}
            },
            "configVars": {"type": "array", "items": {"$ref": "#/$defs/configVar"}},
            "flows": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/flow"}}
        },
        "$defs": {
            "key": {
                "description": "A stable reference key: ASCII letters, digits, `_` and `-`, starting with a letter or `_`.",
                "type": "string",
                "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$",
                "maxLength": 128
            },
            "componentPin": {
                "type": "object",
                "additionalProperties": false,
                "required": ["version"],
                "properties": {
                    "version": {
                        "description": "The version the component's manifest declares; a host's registry may also read an integer (or an integer string) as its own version number.",
                        "type": ["string", "integer"],
                        "minLength": 1,
                        "minimum": 0
                    },
                    "hash": {
                        "description": "sha256 of the component's bytes, filled in at publish time.",
                        "type": "string",
                        "pattern": "^(sha256:)?[0-9a-fA-F]{64}$"
                    }
                }
            },
            "configVar": {
                "type": "object",
                "additionalProperties": false,
                "required": ["key"],
                "properties": {
                    "key": {
                        "description": "Letters, digits, spaces, `-` and `_`; no `.`.",
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 128,
                        "pattern": "^[^.{}#]+$"
                    },
                    "dataType": {
                        "enum": [
                            "string", "number", "boolean", "date", "timestamp", "picklist",
                            "code", "json", "connection", "schedule", "objectSelection",
                            "objectFieldMap", "jsonForm"
                        ]
                    },
                    "defaultValue": {},
                    "description": {"type": "string"},
                    "label": {"type": "string"},
                    "connection": component_item(
                        "For a `connection` variable: the connection type `key` a pinned `component` declares."
                    ),
                    "dataSource": component_item(
                        "The data source `key` of a pinned `component` that lists the values to pick from; it runs with the instance's connections."
                    ),
                    "picklist": {
                        "description": "For a `picklist` variable without a data source: the values to pick from.",
                        "type": "array",
                        "items": {"type": "string"}
                    },
                    "secret": {
                        "description": "A secret (a webhook signing secret): the configuration wizard never shows its value back.",
                        "type": "boolean"
                    }
                }
            },
            "flow": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "key": {"$ref": "#/$defs/key"},
                    "name": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    "trigger": {"$ref": "#/$defs/trigger"},
                    "steps": {"$ref": "#/$defs/steps"},
                    "code": {
                        "description": "A code-native flow: a pinned component of world `flow`.",
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["component"],
                        "properties": {"component": {"type": "string"}}
                    },
                    "on": {
                        "description": "Run when an instance is deployed or removed, instead of from a webhook.",
                        "enum": ["instanceDeploy", "instanceRemove"]
                    },
                    "synchronous": {
                        "description": "Webhook callers wait for the flow's response.",
                        "type": "boolean"
                    },
                    "schedule": {"$ref": "#/$defs/schedule"},
                    "singleton": {
                        "description": "Skip a scheduled run (recorded as skipped) while an earlier execution of the same instance and flow is unfinished.",
                        "type": "boolean"
                    },
                    "retry": {"$ref": "#/$defs/flowRetry"},
                    "queue": {"$ref": "#/$defs/flowQueue"},
                    "timeLimitSeconds": {
                        "description": "Seconds an execution may run in all (default: 900 asynchronous, 30 synchronous).",
                        "type": "integer", "minimum": 1, "maximum": 86400
                    }
                },
                "anyOf": [{"required": ["key"]}, {"required": ["name"]}],
                "oneOf": [
                    {"required": ["steps"], "not": {"required": ["code"]}},
                    {"required": ["code"], "not": {"required": ["steps"]}}
                ]
            },
            "trigger": {
                "type": "object",
                "additionalProperties": false,
                "required": ["component", "trigger"],
                "properties": {
                    "component": {"type": "string"},
                    "trigger": {"type": "string"},
                    "inputs": {"$ref": "#/$defs/inputs"}
                }
            },
            "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
            "optionalSteps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
            "step": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "key": {"$ref": "#/$defs/key"},
                    "name": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    "action": {
                        "description": "`component.action`",
                        "type": "string",
                        "pattern": "^[^.]+\\..+$"
                    },
                    "code": {
                        "description": "A JavaScript function `(context, stepResults) => result`, run by the server's code engine (docs/flows.md, Code steps).",
                        "type": "string",
                        "minLength": 1
                    },
                    "inputs": {"$ref": "#/$defs/inputs"},
                    "errorConfig": {"$ref": "#/$defs/errorConfig"},
                    "branchOnValue": {"$ref": "#/$defs/branchOnValue"},
                    "branchOnExpression": {"$ref": "#/$defs/branchOnExpression"},
                    "loopOverItems": {"$ref": "#/$defs/loopOverItems"},
                    "loopNTimes": {"$ref": "#/$defs/loopNTimes"},
                    "breakLoop": {"type": "object", "additionalProperties": false},
                    "stopExecution": {"$ref": "#/$defs/stopExecution"},
                    "invokeFlow": {"$ref": "#/$defs/invokeFlow"}
                },
                "anyOf": [{"required": ["key"]}, {"required": ["name"]}],
                "oneOf": step_kinds.iter().map(|kind| json!({"required": [kind]})).collect::<Vec<_>>()
            },
            "inputs": {"type": "object", "additionalProperties": {"$ref": "#/$defs/input"}},
            "input": {
                "description": "Where a value comes from: `{type, value}`, or a scalar as a shorthand for `{type: value, value: <scalar>}`.",
                "oneOf": [
                    {"type": ["string", "number", "boolean", "null"]},
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["type"],
                        "properties": {"type": {"const": "value"}, "value": {}}
                    },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["type", "value"],
                        "properties": {
                            "type": {"enum": ["reference", "configVar", "template"]},
                            "value": {"type": "string"}
                        }
                    },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["type", "value"],
                        "properties": {
                            "type": {"const": "complex"},
                            "value": {
                                "oneOf": [
                                    {"type": "array", "items": {"$ref": "#/$defs/input"}},
                                    {"type": "object", "additionalProperties": {"$ref": "#/$defs/input"}}
                                ]
                            }
                        }
                    }
                ]
            },
            "errorConfig": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "errorHandlerType": {"enum": ["fail", "ignore", "retry"]},
                    "maxAttempts": {"type": "integer", "minimum": 0, "maximum": 5},
                    "delaySeconds": {"type": "integer", "minimum": 0, "maximum": 60},
                    "usesExponentialBackoff": {"type": "boolean"},
                    "ignoreFinalError": {"type": "boolean"}
                }
            },
            "branchName": {"type": "string", "minLength": 1, "not": {"pattern": "^[Ee][Ll][Ss][Ee]$"}},
            "branchOnValue": {
                "type": "object",
                "additionalProperties": false,
                "required": ["value", "branches"],
                "properties": {
                    "value": {"$ref": "#/$defs/input"},
                    "branches": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["name", "value"],
                            "properties": {
                                "name": {"$ref": "#/$defs/branchName"},
                                "value": {"$ref": "#/$defs/input"},
                                "steps": {"$ref": "#/$defs/optionalSteps"}
                            }
                        }
                    },
                    "else": {"$ref": "#/$defs/optionalSteps"}
                }
            },
            "branchOnExpression": {
                "type": "object",
                "additionalProperties": false,
                "required": ["branches"],
                "properties": {
                    "branches": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["name", "condition"],
                            "properties": {
                                "name": {"$ref": "#/$defs/branchName"},
                                "condition": {"$ref": "#/$defs/condition"},
                                "steps": {"$ref": "#/$defs/optionalSteps"}
                            }
                        }
                    },
                    "else": {"$ref": "#/$defs/optionalSteps"}
                }
            },
            "condition": {
                "description": "Prefix notation: [operator, term, term], [unary operator, term], or [and|or, condition, ...].",
                "oneOf": [
                    {
                        "type": "array",
                        "minItems": 2,
                        "prefixItems": [{"enum": ["and", "or"]}],
                        "items": {"$ref": "#/$defs/condition"}
                    },
                    {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 2,
                        "prefixItems": [{"enum": unary}, {"$ref": "#/$defs/input"}]
                    },
                    {
                        "type": "array",
                        "minItems": 3,
                        "maxItems": 3,
                        "prefixItems": [
                            {"enum": binary},
                            {"$ref": "#/$defs/input"},
                            {"$ref": "#/$defs/input"}
                        ]
                    }
                ]
            },
            "loopOverItems": {
                "type": "object",
                "additionalProperties": false,
                "required": ["items", "steps"],
                "properties": {
                    "items": {"$ref": "#/$defs/input"},
                    "steps": {"$ref": "#/$defs/steps"}
                }
            },
            "loopNTimes": {
                "type": "object",
                "additionalProperties": false,
                "required": ["count", "steps"],
                "properties": {
                    "count": {"$ref": "#/$defs/input"},
                    "steps": {"$ref": "#/$defs/steps"}
                }
            },
            "invokeFlow": {
                "description": "Run another flow of the instance as a child execution: wait for its response (`synchronous`, the default) or queue it and continue with `{executionId}`.",
                "type": "object",
                "additionalProperties": false,
                "required": ["flow"],
                "properties": {
                    "flow": {"$ref": "#/$defs/key"},
                    "payload": {"$ref": "#/$defs/input"},
                    "synchronous": {"type": "boolean"}
                }
            },
            "stopExecution": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "status": {"$ref": "#/$defs/input"},
                    "headers": {"$ref": "#/$defs/headers"},
                    "contentType": {"$ref": "#/$defs/input"},
                    "body": {"$ref": "#/$defs/input"}
                }
            }
        }
    });
    if let Some(defs) = schema.get_mut("$defs").and_then(Value::as_object_mut) {
        defs.insert("schedule".into(), schedule);
        defs.insert("flowRetry".into(), flow_retry());
        defs.insert("flowQueue".into(), flow_queue());
        defs.insert("headers".into(), headers());
    }
    schema
}

/// `stopExecution.headers`: an input, a bare object of header names to inputs, or a
/// bare list of `[name, value]` pairs.
fn headers() -> Value {
    json!({
        "description": "Response headers: a bare object of header names to inputs (an object with a `type` field is read as an input), a bare list of `[name, value]` pairs, or an input that yields either.",
        "oneOf": [
            {"$ref": "#/$defs/input"},
            {
                "type": "object",
                "not": {"required": ["type"]},
                "additionalProperties": {"$ref": "#/$defs/input"}
            },
            {
                "type": "array",
                "items": {
                    "type": "array",
                    "prefixItems": [{"type": "string"}, {"type": "string"}],
                    "minItems": 2,
                    "maxItems": 2
                }
            }
        ]
    })
}

/// The schema as published: pretty JSON with a final newline.
pub fn definition_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&definition_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// `retry` of a flow: retries of a failed asynchronous execution.
fn flow_retry() -> Value {
    let request_path = json!({
        "type": "string",
        "pattern": "^(body|headers|query)(\\.[^.]+)+$"
    });
    json!({
        "description": "Retries of a failed asynchronous execution.",
        "type": "object",
        "additionalProperties": false,
        "required": ["attempts"],
        "properties": {
            "attempts": {"type": "integer", "minimum": 1, "maximum": 10},
            "delayMinutes": {"type": "integer", "minimum": 0, "maximum": 1440},
            "exponential": {"type": "boolean"},
            "uniqueRequestId": request_path
        }
    })
}

/// `queue` of a flow: FIFO delivery with an optional dedupe id.
fn flow_queue() -> Value {
    json!({
        "description": "One execution at a time per instance, in arrival order; `dedupeId` drops repeats seen in the last 10 minutes.",
        "type": "object",
        "additionalProperties": false,
        "required": ["fifo"],
        "properties": {
            "fifo": {"type": "boolean"},
            "dedupeId": {"type": "string", "pattern": "^(body|headers|query)(\\.[^.]+)+$"}
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::flow::definition::*;

    fn published() -> String {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/flow-definition.schema.json"
        );
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Rewrite the published file with `SLUICE_WRITE_SCHEMA=1 cargo test -p
    /// sluice-runtime schema`.
    #[test]
    fn the_published_schema_is_current() {
        let current = definition_schema_text();
        if std::env::var_os("SLUICE_WRITE_SCHEMA").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../docs/flow-definition.schema.json"
            );
            std::fs::write(path, &current).unwrap();
        }
        assert!(
            published() == current,
            "{SCHEMA_PATH} is stale: run `SLUICE_WRITE_SCHEMA=1 cargo test -p sluice-runtime \
             the_published_schema_is_current`"
        );
    }

    /// A definition that sets every field of every type.
    fn kitchen_sink() -> Definition {
        let step = |key: &str| Step {
            key: Some(key.into()),
            name: Some(format!("Step {key}")),
            description: Some("d".into()),
            ..Step::default()
        };
        let echo = |key: &str| Step {
            action: Some("hello.echo".into()),
            ..step(key)
        };
        let action = Step {
            action: Some("hello.echo".into()),
            inputs: [
                ("v".to_string(), Input::Value(json!({"a": 1}))),
                (
                    "r".to_string(),
                    Input::Reference("trigger.results.body".into()),
                ),
                ("c".to_string(), Input::ConfigVar("Region".into())),
                ("t".to_string(), Input::Template("x-{{#Region}}".into())),
                (
                    "l".to_string(),
                    Input::Complex(Complex::List(vec![Input::Value(json!(1))])),
                ),
                (
                    "o".to_string(),
                    Input::Complex(Complex::Object(
                        [("k".to_string(), Input::Value(json!(2)))].into(),
                    )),
                ),
            ]
            .into(),
            error_config: Some(ErrorConfig {
                error_handler_type: ErrorHandler::Retry,
                max_attempts: Some(2),
                delay_seconds: Some(1),
                uses_exponential_backoff: true,
                ignore_final_error: true,
            }),
            ..step("a")
        };
        let steps = vec![
            action,
            Step {
                branch_on_value: Some(BranchOnValue {
                    value: Input::Value(json!(1)),
                    branches: vec![ValueBranch {
                        name: "One".into(),
                        value: Input::Value(json!(1)),
                        steps: vec![echo("b1")],
                    }],
                    else_steps: vec![echo("b2")],
                }),
                ..step("b")
            },
            Step {
                branch_on_expression: Some(BranchOnExpression {
                    branches: vec![ExpressionBranch {
                        name: "Yes".into(),
                        condition: Condition(json!(["and", ["exists", 1], ["equal", 1, 1]])),
                        steps: vec![echo("c1")],
                    }],
                    else_steps: vec![echo("c2")],
                }),
                ..step("c")
            },
            Step {
                loop_over_items: Some(LoopOverItems {
                    items: Input::Value(json!([1])),
                    steps: vec![Step {
                        break_loop: Some(BreakLoop {}),
                        ..step("d1")
                    }],
                }),
                ..step("d")
            },
            Step {
                loop_n_times: Some(LoopNTimes {
                    count: Input::Value(json!(2)),
                    steps: vec![echo("e1")],
                }),
                ..step("e")
            },
            Step {
                stop_execution: Some(StopExecution {
                    status: Some(Input::Value(json!(201))),
                    headers: Some(Input::Value(json!({"x": "y"}))),
                    content_type: Some(Input::Value(json!("text/plain"))),
                    body: Some(Input::Value(json!("ok"))),
                }),
                ..step("f")
            },
            Step {
                invoke_flow: Some(InvokeFlow {
                    flow: "code".into(),
                    payload: Some(Input::Reference("a.results".into())),
                    synchronous: false,
                }),
                error_config: Some(ErrorConfig::default()),
                ..step("g")
            },
            Step {
                code: Some("(context, stepResults) => ({ data: 1 })".into()),
                error_config: Some(ErrorConfig::default()),
                ..step("h")
            },
        ];
        Definition {
            definition_version: 1,
            name: "Sink".into(),
            description: Some("everything".into()),
            components: [(
                "hello".to_string(),
                ComponentPin {
                    version: "0.1.0".into(),
                    hash: Some("0".repeat(64)),
                },
            )]
            .into(),
            config_vars: vec![
                ConfigVar {
                    key: "Region".into(),
                    data_type: ConfigVarType::String,
                    default_value: Some(json!("eu")),
                    description: Some("where".into()),
                    label: Some("Region".into()),
                    connection: None,
                    data_source: Some(DataSourceRef {
                        component: "hello".into(),
                        key: "regions".into(),
                    }),
                    picklist: Some(vec!["eu".into()]),
                    secret: true,
                },
                ConfigVar {
                    key: "Account".into(),
                    data_type: ConfigVarType::Connection,
                    default_value: None,
                    description: None,
                    label: None,
                    connection: Some(ConnectionTypeRef {
                        component: "hello".into(),
                        key: "api".into(),
                    }),
                    data_source: None,
                    picklist: None,
                    secret: false,
                },
            ],
            flows: vec![
                Flow {
                    key: Some("main".into()),
                    name: Some("Main".into()),
                    description: Some("d".into()),
                    trigger: Some(Trigger {
                        component: "hello".into(),
                        trigger: "webhook".into(),
                        inputs: [("x".to_string(), Input::Value(json!(1)))].into(),
                    }),
                    steps,
                    code: None,
                    on: None,
                    synchronous: true,
                    schedule: Some(Schedule {
                        cron: Some("*/5 * * * *".into()),
                        timezone: Some("Europe/Paris".into()),
                        config_var: None,
                    }),
                    singleton: true,
                    retry: Some(FlowRetry {
                        attempts: 3,
                        delay_minutes: 1,
                        exponential: true,
                        unique_request_id: Some("body.id".into()),
                    }),
                    queue: Some(FlowQueue {
                        fifo: true,
                        dedupe_id: Some("headers.x-delivery".into()),
                    }),
                    time_limit_seconds: Some(60),
                },
                Flow {
                    key: Some("code".into()),
                    name: None,
                    description: None,
                    trigger: None,
                    steps: Vec::new(),
                    code: Some(CodeFlow {
                        component: "hello-flow".into(),
                    }),
                    on: Some(FlowEvent::InstanceDeploy),
                    synchronous: false,
                    // Not valid with `on` (the validator says so), but the schema
                    // only checks shapes.
                    schedule: Some(Schedule {
                        config_var: Some("Region".into()),
                        ..Schedule::default()
                    }),
                    singleton: false,
                    retry: None,
                    queue: None,
                    time_limit_seconds: None,
                },
            ],
        }
    }

    /// Every object key that appears in a JSON document.
    fn keys_in(value: &Value, into: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    into.insert(key.clone());
                    keys_in(child, into);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| keys_in(item, into)),
            _ => {}
        }
    }

    /// Every property name the schema declares.
    fn schema_properties(schema: &Value, into: &mut BTreeSet<String>) {
        match schema {
            Value::Object(map) => {
                if let Some(Value::Object(properties)) = map.get("properties") {
                    into.extend(properties.keys().cloned());
                }
                map.values()
                    .for_each(|child| schema_properties(child, into));
            }
            Value::Array(items) => items.iter().for_each(|item| schema_properties(item, into)),
            _ => {}
        }
    }

    #[test]
    fn the_schema_and_the_types_agree() {
        let validator = jsonschema::validator_for(&definition_schema()).expect("schema compiles");
        let sink = kitchen_sink().to_json_value();
        let errors: Vec<String> = validator
            .iter_errors(&sink)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        // Every field the types write is in the schema (it allows nothing else), and
        // every property of the schema is a field the types write.
        let mut written = BTreeSet::new();
        keys_in(&sink, &mut written);
        let mut declared = BTreeSet::new();
        schema_properties(&definition_schema(), &mut declared);
        let missing: Vec<&String> = declared.difference(&written).collect();
        assert!(
            missing.is_empty(),
            "schema properties the types never write: {missing:?}"
        );
        // And the types read back what they wrote.
        let text = serde_json::to_string(&sink).unwrap();
        assert_eq!(Definition::from_json(&text).unwrap(), kitchen_sink());
    }

    #[test]
    fn the_schema_rejects_what_the_parser_rejects() {
        let validator = jsonschema::validator_for(&definition_schema()).expect("schema compiles");
        for bad in [
            json!({"definitionVersion": 1, "name": "x"}),
            json!({"definitionVersion": 1, "name": "x", "flows": [], "extra": 1}),
            json!({"definitionVersion": 1, "name": "x", "flows": [{"key": "f", "steps": [{"key": "a", "bogus": 1}]}]}),
            json!({"definitionVersion": 1, "name": "x", "flows": [{"key": "f", "steps": [{"key": "a", "action": "h.e", "inputs": {"i": {"type": "nope", "value": 1}}}]}]}),
            json!({"definitionVersion": 1, "name": "x", "flows": [{"key": "f", "steps": [{"key": "a", "action": "h.e", "inputs": {"i": [1]}}]}]}),
        ] {
            assert!(!validator.is_valid(&bad), "{bad}");
            assert!(Definition::from_value(bad.clone()).is_err(), "{bad}");
        }
    }
}
