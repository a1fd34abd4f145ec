//! A flow's trigger (the component trigger and its inputs), the places in the
//! trigger request that queue settings read, and the response a flow answers with
//! (`stopExecution`'s status and headers, also checked again by the executor).

use std::sync::Arc;

use serde_json::Value;

use super::{Compiler, FlowScope};
use crate::World;
use crate::flow::definition::Trigger;
use crate::flow::expression::string_to_number;
use crate::flow::plan::TriggerPlan;

impl Compiler<'_> {
    /// A place in the trigger request: `body.<path>`, `headers.<name>` or
    /// `query.<name>`.
    pub(super) fn request_path(&mut self, path: &str, at: &str) {
        let mut parts = at.split('.');
        let root = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        if !matches!(root, "body" | "headers" | "query")
            || rest.is_empty()
            || rest.iter().any(|part| part.is_empty())
            || (root != "body" && rest.len() != 1)
        {
            self.error(
                path.to_string(),
                format!(
                    "`{at}` is not a place in the request: use `body.<field>[.<field>...]`, `headers.<name>` or `query.<name>`"
                ),
            );
        }
    }

    pub(super) fn trigger(&mut self, path: &str, trigger: &Trigger) -> Option<TriggerPlan> {
        let entry = self
            .component(
                &format!("{path}.component"),
                &trigger.component,
                World::Component,
            )
            .ok()?;
        let schema = match &entry {
            Some(entry) => match entry.manifest.triggers.get(&trigger.trigger) {
                Some(schema) => Some(schema.clone()),
                None => {
                    let known: Vec<&str> =
                        entry.manifest.triggers.keys().map(String::as_str).collect();
                    self.error(
                        format!("{path}.trigger"),
                        format!(
                            "unknown trigger `{}` of component `{}` (its triggers: {})",
                            trigger.trigger,
                            trigger.component,
                            if known.is_empty() {
                                "none".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                    return None;
                }
            },
            None => None,
        };
        let mut scope = FlowScope::for_trigger();
        let inputs = self.fields(&format!("{path}.inputs"), &trigger.inputs, &mut scope);
        if let Some(schema) = &schema {
            self.check_inputs(
                path,
                &trigger.inputs,
                &inputs,
                schema,
                &format!("{}.{}", trigger.component, trigger.trigger),
            );
        }
        Some(TriggerPlan::Component {
            component_key: Arc::from(trigger.component.as_str()),
            entry: entry?,
            trigger: trigger.trigger.clone(),
            inputs,
        })
    }
}

/// An HTTP status for a response: an integer (or numeric string) from 100 to 599.
pub(crate) fn response_status(value: &Value) -> Result<u16, String> {
    let number = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => Some(string_to_number(text)),
        _ => None,
    };
    match number {
        Some(n) if n.fract() == 0.0 && (100.0..=599.0).contains(&n) => Ok(n as u16),
        _ => Err(format!(
            "`status` must be an HTTP status from 100 to 599, got {value}"
        )),
    }
}

/// Response headers: an object of strings, or a list of `[name, value]` pairs.
pub(crate) fn response_headers(value: &Value) -> Result<Vec<(String, String)>, String> {
    let invalid = || {
        format!(
            "`headers` must be an object of strings or a list of [name, value] pairs, got {value}"
        )
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => map
            .iter()
            .map(|(name, value)| match value {
                Value::String(text) => Ok((name.clone(), text.clone())),
                _ => Err(invalid()),
            })
            .collect(),
        Value::Array(pairs) => pairs
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(name), Value::String(value)]) => {
                    Ok((name.clone(), value.clone()))
                }
                _ => Err(invalid()),
            })
            .collect(),
        _ => Err(invalid()),
    }
}
