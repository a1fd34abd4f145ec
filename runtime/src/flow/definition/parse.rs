//! Reading a definition document: YAML or JSON into one JSON value (with the document
//! depth bounded before any recursion), the step-depth check, then the typed pass,
//! with errors that carry the path (and for syntax errors the line and column).

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{Definition, MAX_DOCUMENT_DEPTH, MAX_STEP_DEPTH, PARSE_STACK_BYTES};
use crate::flow::validate::{InvalidDefinition, ValidationError};

/// The syntax of a definition file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// JSON for a `.json` file, YAML otherwise.
    pub fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|ext| ext.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

impl Definition {
    /// Parses a definition; YAML and JSON produce the same types. Errors carry the
    /// path of the field (and, for syntax errors, the line and column).
    ///
    /// The parsers recurse once per level of nesting, and the YAML parser's frames are
    /// large (tens of KiB each in a debug build), so a document nested as deep as the
    /// limits allow would overflow a 2 MiB thread stack (a test's, or a tokio
    /// worker's). The parse runs on a thread of its own with [`PARSE_STACK_BYTES`].
    pub fn parse(text: &str, format: Format) -> Result<Definition, InvalidDefinition> {
        let failed = |what: String| {
            InvalidDefinition::single(ValidationError::at(
                "",
                format!("internal error: the definition parser {what}"),
            ))
        };
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("sluice-definition-parse".into())
                .stack_size(PARSE_STACK_BYTES)
                .spawn_scoped(scope, || Self::parse_on_this_thread(text, format))
                .map_err(|err| failed(format!("could not start: {err}")))?
                .join()
                .map_err(|_| failed("panicked".into()))?
        })
    }

    fn parse_on_this_thread(text: &str, format: Format) -> Result<Definition, InvalidDefinition> {
        let value = match format {
            Format::Json => json_value(text).map_err(InvalidDefinition::single)?,
            Format::Yaml => yaml_value(text).map_err(|err| {
                let location = err.location();
                InvalidDefinition::single(ValidationError {
                    path: String::new(),
                    message: yaml_message(&err),
                    line: location.map(|at| at.line()),
                    column: location.map(|at| at.column()),
                })
            })?,
        };
        Self::from_value(value)
    }

    /// Reads and parses a definition file: JSON for `.json`, YAML otherwise.
    pub fn from_path(path: &Path) -> Result<Definition, InvalidDefinition> {
        let bytes = std::fs::read(path).map_err(|err| {
            InvalidDefinition::single(ValidationError::at(
                "",
                format!("cannot read {}: {err}", path.display()),
            ))
        })?;
        let text = String::from_utf8(bytes).map_err(|err| {
            InvalidDefinition::single(ValidationError::at(
                "",
                not_utf8(&path.display().to_string(), &err),
            ))
        })?;
        Self::parse(&text, Format::of_path(path))
    }

    /// Parses a YAML definition.
    pub fn from_yaml(text: &str) -> Result<Definition, InvalidDefinition> {
        Self::parse(text, Format::Yaml)
    }

    /// Parses a JSON definition.
    pub fn from_json(text: &str) -> Result<Definition, InvalidDefinition> {
        Self::parse(text, Format::Json)
    }

    /// Reads a definition from a JSON value (what both syntaxes parse into).
    pub fn from_value(value: Value) -> Result<Definition, InvalidDefinition> {
        if !value.is_object() {
            return Err(InvalidDefinition::single(ValidationError::at(
                "",
                "a definition is an object with `definitionVersion`, `name` and `flows`",
            )));
        }
        // Before the typed pass, whose recursion follows the steps.
        check_step_depth(&value).map_err(InvalidDefinition::single)?;
        serde_path_to_error::deserialize::<_, Definition>(value).map_err(|err| {
            let path = err.path().to_string();
            let path = if path == "." { String::new() } else { path };
            InvalidDefinition::single(ValidationError::at(
                path,
                plain_message(&err.into_inner().to_string()),
            ))
        })
    }

    /// The definition as JSON.
    pub fn to_json_value(&self) -> Value {
        // Serializing these types cannot fail: keys are strings, values JSON.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Reads YAML into a JSON value. Only YAML 1.2 booleans are booleans: `yes`, `no`,
/// `on` and `off` stay strings (a branch named `Yes` must not become `true`). Lists
/// and objects may nest [`MAX_DOCUMENT_DEPTH`] deep, block or flow style.
pub(crate) fn yaml_value(text: &str) -> Result<Value, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(
        text,
        serde_saphyr::options! {
            strict_booleans: true,
            budget: serde_saphyr::budget! {
                max_depth: MAX_DOCUMENT_DEPTH,
                flow_nesting_limit: MAX_DOCUMENT_DEPTH,
            },
        },
    )
}

/// The message of a YAML error, in the terms of the document rather than of the
/// parser's options.
fn yaml_message(err: &serde_saphyr::Error) -> String {
    use serde_saphyr::budget::BudgetBreach;
    match err.without_snippet() {
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        } => too_deep(),
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => match key {
            Some(key) => format!("not valid YAML: duplicate key `{key}`"),
            None => "not valid YAML: duplicate key".to_string(),
        },
        other => format!("not valid YAML: {}", first_line(&other.to_string())),
    }
}

fn too_deep() -> String {
    format!("the document nests lists and objects more than {MAX_DOCUMENT_DEPTH} levels deep")
}

/// Why text that should be a definition is not UTF-8, naming where.
pub fn not_utf8(name: &str, err: &std::string::FromUtf8Error) -> String {
    format!(
        "{name} is not UTF-8 text (invalid bytes at offset {})",
        err.utf8_error().valid_up_to()
    )
}

/// Reads JSON into a value, lists and objects nested at most [`MAX_DOCUMENT_DEPTH`]
/// deep (serde_json's own limit, 128, would refuse 25 levels of branches).
fn json_value(text: &str) -> Result<Value, ValidationError> {
    if let Some((line, column)) = crate::types::json_depth_exceeded(text, MAX_DOCUMENT_DEPTH) {
        return Err(ValidationError {
            path: String::new(),
            message: too_deep(),
            line: Some(line),
            column: Some(column),
        });
    }
    let syntax = |err: serde_json::Error| ValidationError {
        path: String::new(),
        message: format!("not valid JSON: {err}"),
        line: Some(err.line() as u64),
        column: Some(err.column() as u64),
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // Bounded above: the parser cannot go deeper than the scan found.
    deserializer.disable_recursion_limit();
    let value = Value::deserialize(&mut deserializer).map_err(syntax)?;
    deserializer.end().map_err(syntax)?;
    Ok(value)
}

/// Refuses steps nested deeper than [`MAX_STEP_DEPTH`], naming the first step past
/// the limit. Reads the untyped document, so a malformed one is left to the typed
/// pass to report.
fn check_step_depth(document: &Value) -> Result<(), ValidationError> {
    let Some(flows) = document.get("flows").and_then(Value::as_array) else {
        return Ok(());
    };
    for (index, flow) in flows.iter().enumerate() {
        if let Some(steps) = flow.get("steps") {
            step_list_depth(steps, &format!("flows[{index}].steps"), 1)?;
        }
    }
    Ok(())
}

fn step_list_depth(steps: &Value, path: &str, level: usize) -> Result<(), ValidationError> {
    let Some(steps) = steps.as_array() else {
        return Ok(());
    };
    for (index, step) in steps.iter().enumerate() {
        let step_path = format!("{path}[{index}]");
        if level > MAX_STEP_DEPTH {
            return Err(ValidationError::at(
                step_path,
                format!(
                    "steps nest {level} levels deep here; at most {MAX_STEP_DEPTH} levels of \
                     steps (branches and loops inside one another) are supported"
                ),
            ));
        }
        for kind in ["branchOnValue", "branchOnExpression"] {
            let Some(branch) = step.get(kind) else {
                continue;
            };
            if let Some(branches) = branch.get("branches").and_then(Value::as_array) {
                for (number, one) in branches.iter().enumerate() {
                    if let Some(inner) = one.get("steps") {
                        let inner_path = format!("{step_path}.{kind}.branches[{number}].steps");
                        step_list_depth(inner, &inner_path, level + 1)?;
                    }
                }
            }
            if let Some(inner) = branch.get("else") {
                step_list_depth(inner, &format!("{step_path}.{kind}.else"), level + 1)?;
            }
        }
        for kind in ["loopOverItems", "loopNTimes"] {
            if let Some(inner) = step.get(kind).and_then(|each| each.get("steps")) {
                step_list_depth(inner, &format!("{step_path}.{kind}.steps"), level + 1)?;
            }
        }
    }
    Ok(())
}

/// A serde message with the Rust type names it may carry (`expected u32`) put in the
/// terms of the document.
fn plain_message(message: &str) -> String {
    let mut text = message.to_string();
    for (rust, plain) in [
        ("u64", format!("a whole number from 0 to {}", u64::MAX)),
        ("u32", format!("a whole number from 0 to {}", u32::MAX)),
        ("u16", format!("a whole number from 0 to {}", u16::MAX)),
        ("usize", format!("a whole number from 0 to {}", u64::MAX)),
        ("i64", "a whole number".to_string()),
    ] {
        text = text.replace(&format!("expected {rust}"), &format!("expected {plain}"));
    }
    text
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::definition::{Complex, Input};
    use serde_json::json;

    #[test]
    fn yaml_and_json_parse_into_the_same_types() {
        let yaml = r#"
definitionVersion: 1
name: Demo
components:
  hello: {version: "0.1.0"}
configVars:
  - key: Region
    defaultValue: eu
flows:
  - key: main
    steps:
      - key: first
        action: hello.echo
        inputs:
          plain: 5
          ref: {type: reference, value: trigger.results.body.id}
          list: {type: complex, value: [1, {type: configVar, value: Region}]}
"#;
        let from_yaml = Definition::from_yaml(yaml).expect("yaml parses");
        let json_text = serde_json::to_string(&from_yaml.to_json_value()).unwrap();
        let from_json = Definition::from_json(&json_text).expect("json parses");
        assert_eq!(from_yaml, from_json);
        let inputs = &from_yaml.flows[0].steps[0].inputs;
        assert_eq!(inputs["plain"], Input::Value(json!(5)));
        assert_eq!(
            inputs["list"],
            Input::Complex(Complex::List(vec![
                Input::Value(json!(1)),
                Input::ConfigVar("Region".into())
            ]))
        );
    }

    #[test]
    fn type_errors_carry_the_path() {
        let err = Definition::from_json(
            r#"{"definitionVersion": 1, "name": "x", "flows": [{"key": "f", "steps": [{"key": "a", "inputs": {"x": {"type": "nope", "value": 1}}}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.errors[0].path, "flows[0].steps[0].inputs.x");
        assert!(err.errors[0].message.contains("unknown input type `nope`"));
    }

    #[test]
    fn a_pin_version_may_be_an_integer() {
        let text = |version: &str| {
            format!(
                r#"{{"definitionVersion": 1, "name": "x", "components": {{"hello": {{"version": {version}}}}},
                    "flows": [{{"key": "f", "steps": [{{"key": "a", "action": "hello.echo"}}]}}]}}"#
            )
        };
        let from_integer = Definition::from_json(&text("2")).unwrap();
        assert_eq!(from_integer.components["hello"].version, "2");
        assert_eq!(
            from_integer,
            Definition::from_json(&text(r#""2""#)).unwrap()
        );
        let yaml = Definition::from_yaml(
            "definitionVersion: 1\nname: x\ncomponents: {hello: {version: 3}}\nflows: [{key: f, code: {component: hello}}]\n",
        )
        .unwrap();
        assert_eq!(yaml.components["hello"].version, "3");
        for bad in ["-1", "1.5", "true", "null"] {
            let err = Definition::from_json(&text(bad)).unwrap_err();
            assert_eq!(err.errors[0].path, "components.hello.version", "{bad}");
        }
    }

    #[test]
    fn only_yaml_1_2_booleans_are_booleans() {
        assert_eq!(
            yaml_value("[yes, No, on, true, False]").unwrap(),
            json!(["yes", "No", "on", true, false])
        );
    }

    #[test]
    fn yaml_syntax_errors_carry_line_and_column() {
        let err = Definition::from_yaml("name: x\nflows: [\n  - a: b\n").unwrap_err();
        assert!(err.errors[0].line.is_some(), "{err:?}");
        assert!(err.errors[0].message.starts_with("not valid YAML"));
    }
}
