//! The input language of a definition: [`Input`] (`{type, value}` or a bare scalar)
//! with its JSON form, and [`Condition`], the prefix notation of branch conditions,
//! kept as JSON until validation checks it with its path.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// An input: where a value comes from. In the file it is `{type, value}`, or a bare
/// scalar (string, number, boolean, null) as a shorthand for `{type: value, value: X}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A literal JSON value.
    Value(Value),
    /// A step result or loop variable: `createTicket.results.id`,
    /// `trigger.results.body.issue.number`, `eachItem.currentItem.name`.
    Reference(String),
    /// The key of a config variable.
    ConfigVar(String),
    /// Text with `{{reference}}` and `{{#config var}}` interpolations.
    Template(String),
    /// A list or an object of inputs.
    Complex(Complex),
}

/// The value of a `complex` input.
#[derive(Debug, Clone, PartialEq)]
pub enum Complex {
    /// A list, each item an input.
    List(Vec<Input>),
    /// An object, each value an input.
    Object(BTreeMap<String, Input>),
}

impl Input {
    /// A literal value.
    pub fn value(value: impl Into<Value>) -> Self {
        Input::Value(value.into())
    }

    /// A reference (`step.results.path`).
    pub fn reference(path: impl Into<String>) -> Self {
        Input::Reference(path.into())
    }

    /// A template (`"gh-{{trigger.results.body.n}}"`).
    pub fn template(text: impl Into<String>) -> Self {
        Input::Template(text.into())
    }

    /// A config variable.
    pub fn config_var(key: impl Into<String>) -> Self {
        Input::ConfigVar(key.into())
    }

    /// The input as the file writes it, `{type, value}`.
    pub fn to_json(&self) -> Value {
        let (kind, value) = match self {
            Input::Value(value) => ("value", value.clone()),
            Input::Reference(text) => ("reference", Value::String(text.clone())),
            Input::ConfigVar(text) => ("configVar", Value::String(text.clone())),
            Input::Template(text) => ("template", Value::String(text.clone())),
            Input::Complex(Complex::List(items)) => (
                "complex",
                Value::Array(items.iter().map(Input::to_json).collect()),
            ),
            Input::Complex(Complex::Object(entries)) => (
                "complex",
                Value::Object(
                    entries
                        .iter()
                        .map(|(name, input)| (name.clone(), input.to_json()))
                        .collect(),
                ),
            ),
        };
        let mut object = Map::new();
        object.insert("type".into(), Value::String(kind.into()));
        object.insert("value".into(), value);
        Value::Object(object)
    }

    /// Reads an input from its JSON form. Errors name the sub-path inside the input
    /// (`value[1].type`) when the problem is nested.
    pub fn from_json(value: &Value) -> Result<Input, String> {
        match value {
            Value::Object(object) => {
                let Some(kind) = object.get("type") else {
                    return Err(
                        "an input is `{type, value}` or a plain scalar; this object has \
                         no `type`"
                            .into(),
                    );
                };
                if let Some(extra) = object.keys().find(|key| *key != "type" && *key != "value") {
                    return Err(format!(
                        "unknown field `{extra}` in an input (expected `type` and `value`)"
                    ));
                }
                let kind = kind.as_str().ok_or("`type` of an input must be a string")?;
                let value = object.get("value");
                let text = |what: &str| -> Result<String, String> {
                    match value {
                        Some(Value::String(text)) => Ok(text.clone()),
                        Some(_) => Err(format!("the value of a `{what}` input must be a string")),
                        None => Err(format!("a `{what}` input needs a `value`")),
                    }
                };
                match kind {
                    "value" => Ok(Input::Value(value.cloned().unwrap_or(Value::Null))),
                    "reference" => text("reference").map(Input::Reference),
                    "configVar" => text("configVar").map(Input::ConfigVar),
                    "template" => text("template").map(Input::Template),
                    "complex" => match value {
                        Some(Value::Array(items)) => items
                            .iter()
                            .enumerate()
                            .map(|(index, item)| {
                                Input::from_json(item)
                                    .map_err(|err| format!("value[{index}]: {err}"))
                            })
                            .collect::<Result<Vec<_>, _>>()
                            .map(|items| Input::Complex(Complex::List(items))),
                        Some(Value::Object(entries)) => Input::object_from_json(entries, "value."),
                        _ => Err(
                            "the value of a `complex` input must be a list or an object \
                             of inputs"
                                .into(),
                        ),
                    },
                    other => Err(format!(
                        "unknown input type `{other}` (expected value, reference, configVar, \
                         template or complex)"
                    )),
                }
            }
            Value::Array(_) => Err("a list must be written as `{type: complex, value: [...]}` \
                 (or `{type: value, value: [...]}` for a literal)"
                .into()),
            scalar => Ok(Input::Value(scalar.clone())),
        }
    }
}

impl Input {
    /// A `complex` object of inputs read from JSON; an entry's error is named
    /// `{prefix}{name}`.
    pub(crate) fn object_from_json(
        entries: &Map<String, Value>,
        prefix: &str,
    ) -> Result<Input, String> {
        entries
            .iter()
            .map(|(name, item)| {
                Input::from_json(item)
                    .map(|input| (name.clone(), input))
                    .map_err(|err| format!("{prefix}{name}: {err}"))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(|entries| Input::Complex(Complex::Object(entries)))
    }
}

impl Serialize for Input {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Input::from_json(&value).map_err(D::Error::custom)
    }
}

/// A branch condition, in the prefix notation of Prismatic's YAML:
/// `[operator, left, right]` for a comparison (`[operator, term]` for a unary one) and
/// `[and | or, condition, condition, ...]` for groups. Terms are inputs. Checked when
/// the definition is validated, so a malformed condition is reported with its path.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition(pub Value);

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Condition)
    }
}
