//! Code steps: the step's JavaScript source checked for what needs no engine, and
//! compiled into an action call of the host's code engine whose input is the source and
//! every result the step may read. Syntax is checked by the engine itself at publish
//! time ([`check_code_steps`](crate::flow::check_code_steps)).

use std::sync::Arc;

use super::super::catalog::InputSchema;
use super::super::plan::{ActionNode, CInput, CRef, CodeStepSource, Fields, Node};
use super::super::reference::RefField;
use super::{Compiler, FlowScope, TRIGGER_KEY};
use crate::flow::definition::Step;

/// The key code steps' calls are recorded under (no pinned component can be mistaken
/// for it: component keys name uploads, and this is no upload).
pub const CODE_ENGINE_KEY: &str = "sluice-code";
/// Largest code step source, in bytes: a step is a small function, and its source is
/// sent to the engine on every run.
pub const MAX_CODE_BYTES: usize = 64 << 10;

fn quoted(name: &str) -> String {
    serde_json::Value::String(name.to_string()).to_string()
}

fn reference(slot: usize, field: RefField) -> CInput {
    CInput::Ref(CRef {
        slot,
        field,
        path: Vec::new(),
    })
}

impl Compiler<'_> {
    pub(super) fn code_step(
        &mut self,
        path: &str,
        step: &Step,
        code: &str,
        slot: usize,
        key: Arc<str>,
        scope: &FlowScope,
    ) -> Option<Node> {
        let code_path = format!("{path}.code");
        let policy = self.error_policy(path, step.error_config.as_ref());
        if code.trim().is_empty() {
            self.error(
                &code_path,
                "the code is empty: write a function, `async (context, stepResults) => ({ data })`",
            );
            return None;
        }
        if code.len() > MAX_CODE_BYTES {
            self.error(
                &code_path,
                format!(
                    "the code is {} bytes; a code step holds at most {MAX_CODE_BYTES} (put larger \
                     logic in a component)",
                    code.len()
                ),
            );
            return None;
        }
        self.code_steps.push(CodeStepSource {
            path: code_path.clone(),
            code: code.to_string(),
        });
        // Without a catalog only the definition is checked.
        let catalog = self.catalog?;
        let Some(entry) = catalog.code_engine() else {
            self.error(
                &code_path,
                "this server has no code engine, so it cannot run code steps (its operator \
                 starts it with `sluice serve --code-engine FILE`; `sluice flow` finds it \
                 among the --components files)",
            );
            return None;
        };
        if !entry.manifest.actions.contains_key("run") {
            self.error(
                &code_path,
                "the server's code engine has no `run` action; its operator must install the \
                 engine built from runtime/code-engine",
            );
            return None;
        }
        // The engine checks its own input; a trivial schema spares every run a check.
        let schema = InputSchema::new(serde_json::json!({"type": "object"})).ok()?;
        // What the function may read: every result before it, and the loops around it.
        let mut results: Vec<(&String, usize)> = scope
            .visible
            .iter()
            .filter_map(|visible| {
                if visible == TRIGGER_KEY {
                    Some((visible, 0))
                } else {
                    scope.steps.get(visible).map(|info| (visible, info.slot))
                }
            })
            .collect();
        results.sort();
        let mut step_results: Fields = results
            .into_iter()
            .map(|(name, slot)| {
                let fields: Fields = vec![(
                    "results".into(),
                    quoted("results"),
                    reference(slot, RefField::Results),
                )];
                (name.clone(), quoted(name), CInput::Object(fields))
            })
            .collect();
        for loop_key in &scope.loops {
            let Some(info) = scope.steps.get(loop_key) else {
                continue;
            };
            let fields: Fields = vec![
                (
                    "currentItem".into(),
                    quoted("currentItem"),
                    reference(info.slot, RefField::CurrentItem),
                ),
                (
                    "index".into(),
                    quoted("index"),
                    reference(info.slot, RefField::Index),
                ),
            ];
            step_results.retain(|(name, _, _)| name != loop_key);
            step_results.push((loop_key.clone(), quoted(loop_key), CInput::Object(fields)));
        }
        let inputs: Fields = vec![
            (
                "code".into(),
                quoted("code"),
                CInput::constant(serde_json::Value::String(code.to_string())),
            ),
            (
                "stepResults".into(),
                quoted("stepResults"),
                CInput::Object(step_results),
            ),
        ];
        Some(Node::Action(ActionNode {
            slot,
            key,
            component_key: Arc::from(CODE_ENGINE_KEY),
            action: "run".to_string(),
            entry,
            inputs,
            schema,
            policy: policy?,
        }))
    }
}
