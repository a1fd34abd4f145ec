//! Inputs: constants, references to the trigger and to earlier steps (which must have
//! finished by then), config variables, templates and complex values.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Compiler, FlowScope, TRIGGER_KEY, json_key, key_path};
use crate::flow::definition::{Complex, Input};
use crate::flow::plan::{CInput, CPart, CRef, Fields};
use crate::flow::reference::{RefField, Reference};
use crate::flow::template;
use crate::flow::template::TemplatePart;

impl Compiler<'_> {
    pub(super) fn fields(
        &mut self,
        path: &str,
        inputs: &BTreeMap<String, Input>,
        scope: &mut FlowScope,
    ) -> Fields {
        inputs
            .iter()
            .filter_map(|(name, input)| {
                self.input(&key_path(path, name), input, scope)
                    .map(|compiled| (name.clone(), json_key(name), compiled))
            })
            .collect()
    }

    /// Compiles one input; `None` after reporting errors.
    pub(super) fn input(
        &mut self,
        path: &str,
        input: &Input,
        scope: &mut FlowScope,
    ) -> Option<CInput> {
        match input {
            Input::Value(value) => Some(CInput::constant(value.clone())),
            Input::Reference(text) => {
                let reference = match Reference::parse(text) {
                    Ok(reference) => reference,
                    Err(message) => {
                        self.error(path, message);
                        return None;
                    }
                };
                self.reference(path, &reference, scope).map(CInput::Ref)
            }
            Input::ConfigVar(key) => self.config_var(path, key).map(CInput::Config),
            Input::Template(text) => {
                let parts = match template::parse(text) {
                    Ok(parts) => parts,
                    Err(message) => {
                        self.error(path, format!("malformed template: {message}"));
                        return None;
                    }
                };
                let mut compiled = Vec::with_capacity(parts.len());
                let mut ok = true;
                for part in parts {
                    match part {
                        TemplatePart::Text(text) => compiled.push(CPart::Text(text)),
                        TemplatePart::Reference(reference) => {
                            match self.reference(path, &reference, scope) {
                                Some(compiled_ref) => compiled.push(CPart::Ref(compiled_ref)),
                                None => ok = false,
                            }
                        }
                        TemplatePart::ConfigVar(key) => match self.config_var(path, &key) {
                            Some(slot) => compiled.push(CPart::Config(slot)),
                            None => ok = false,
                        },
                    }
                }
                if !ok {
                    return None;
                }
                match compiled.as_slice() {
                    [] => Some(CInput::constant(Value::String(String::new()))),
                    [CPart::Text(text)] => Some(CInput::constant(Value::String(text.clone()))),
                    _ => Some(CInput::Template(compiled)),
                }
            }
            Input::Complex(Complex::List(items)) => {
                let mut compiled = Vec::with_capacity(items.len());
                let mut ok = true;
                for (index, item) in items.iter().enumerate() {
                    match self.input(&format!("{path}.value[{index}]"), item, scope) {
                        Some(item) => compiled.push(item),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                if compiled.iter().all(|item| item.as_const().is_some()) {
                    let values = compiled
                        .into_iter()
                        .filter_map(|item| match item {
                            CInput::Const { value, .. } => Some(value),
                            _ => None,
                        })
                        .collect();
                    return Some(CInput::constant(Value::Array(values)));
                }
                Some(CInput::List(compiled))
            }
            Input::Complex(Complex::Object(entries)) => {
                let before = self.errors.len();
                let fields = self.fields(&format!("{path}.value"), entries, scope);
                if self.errors.len() > before {
                    return None;
                }
                if fields
                    .iter()
                    .all(|(_, _, input)| input.as_const().is_some())
                {
                    let object = fields
                        .into_iter()
                        .filter_map(|(name, _, input)| match input {
                            CInput::Const { value, .. } => Some((name, value)),
                            _ => None,
                        })
                        .collect();
                    return Some(CInput::constant(Value::Object(object)));
                }
                Some(CInput::Object(fields))
            }
        }
    }

    pub(super) fn config_var(&mut self, path: &str, key: &str) -> Option<usize> {
        match self.config.get(key) {
            Some(&slot) => Some(slot),
            None => {
                let mut known: Vec<&String> = self.config.keys().collect();
                known.sort();
                self.error(
                    path,
                    format!(
                        "unknown config variable `{key}` (declared: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                );
                None
            }
        }
    }

    pub(super) fn reference(
        &mut self,
        path: &str,
        reference: &Reference,
        scope: &FlowScope,
    ) -> Option<CRef> {
        let root = reference.root.as_str();
        let compiled = |slot| CRef {
            slot,
            field: reference.field,
            path: reference.path.clone(),
        };
        if root == TRIGGER_KEY {
            if matches!(reference.field, RefField::CurrentItem | RefField::Index) {
                self.error(path, "the trigger is not a loop: use `trigger.results`");
                return None;
            }
            if scope.running.first().map(String::as_str) == Some(TRIGGER_KEY) {
                self.error(
                    path,
                    "trigger inputs cannot reference results: the trigger runs first",
                );
                return None;
            }
            return Some(compiled(0));
        }
        let Some(info) = scope.steps.get(root).cloned() else {
            self.error(
                path,
                format!("reference to unknown step `{root}`: no step of this flow has this key"),
            );
            return None;
        };
        match reference.field {
            RefField::CurrentItem | RefField::Index => {
                if !info.is_loop {
                    self.error(
                        path,
                        format!("`{root}` is not a loop, so it has no `currentItem` or `index`"),
                    );
                    return None;
                }
                if !scope.loops.iter().any(|key| key == root) {
                    self.error(
                        path,
                        format!(
                            "`{root}.{}` is only available inside the loop `{root}`",
                            if reference.field == RefField::Index {
                                "index"
                            } else {
                                "currentItem"
                            }
                        ),
                    );
                    return None;
                }
                Some(compiled(info.slot))
            }
            RefField::Results | RefField::Branch => {
                if scope.visible.contains(root) {
                    return Some(compiled(info.slot));
                }
                let message = if scope.running.last().map(String::as_str) == Some(root) {
                    "a step cannot reference its own result".to_string()
                } else if scope.running.iter().any(|key| key == root) {
                    format!(
                        "step `{root}` has not finished when this step runs (inside a loop, use \
                         `{root}.currentItem` or `{root}.index`)"
                    )
                } else {
                    format!(
                        "reference to step `{root}`, which does not precede this step (a \
                         reference reads a step that ran before it)"
                    )
                };
                self.error(path, message);
                None
            }
        }
    }
}
