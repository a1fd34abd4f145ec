//! Steps: the first pass that gives every step its key and slot, and the dispatch
//! of each step to what it does (action, branch, loop, break, stop, invokeFlow).

use std::collections::hash_map::Entry;
use std::sync::Arc;

use super::{Compiler, FlowScope, StepInfo, TRIGGER_KEY};
use crate::flow::definition::Step;
use crate::flow::keys::camel_case_key;
use crate::flow::plan::{InvokeFlowNode, Node};

impl Compiler<'_> {
    /// First pass over a flow: the key and slot of every step, in document order, so
    /// that references to unknown and to later steps can be told apart.
    pub(super) fn collect_keys(&mut self, path: &str, steps: &[Step], scope: &mut FlowScope) {
        for (index, step) in steps.iter().enumerate() {
            let step_path = format!("{path}[{index}]");
            let key = self.entity_key(&step_path, step.key.as_deref(), step.name.as_deref());
            let slot = scope.next_slot;
            scope.next_slot += 1;
            if let Some(key) = key {
                if key == TRIGGER_KEY {
                    self.error(
                        key_field(&step_path, step),
                        "`trigger` is reserved for the flow's trigger",
                    );
                } else {
                    let is_loop = step.loop_over_items.is_some() || step.loop_n_times.is_some();
                    match scope.steps.entry(key) {
                        Entry::Occupied(taken) => self.error(
                            key_field(&step_path, step),
                            format!(
                                "duplicate step key `{}`: step keys are unique in a flow",
                                taken.key()
                            ),
                        ),
                        Entry::Vacant(free) => {
                            free.insert(StepInfo { slot, is_loop });
                        }
                    }
                }
            }
            for (child_path, children) in children(&step_path, step) {
                self.collect_keys(&child_path, children, scope);
            }
        }
    }

    pub(super) fn block(&mut self, path: &str, steps: &[Step], scope: &mut FlowScope) -> Vec<Node> {
        let mut nodes = Vec::with_capacity(steps.len());
        for (index, step) in steps.iter().enumerate() {
            let step_path = format!("{path}[{index}]");
            if let Some(node) = self.step(&step_path, step, scope) {
                nodes.push(node);
            }
        }
        nodes
    }

    pub(super) fn step(&mut self, path: &str, step: &Step, scope: &mut FlowScope) -> Option<Node> {
        let slot = scope.next_slot;
        scope.next_slot += 1;
        // Keys were checked by the first pass; a step whose key is unusable still has
        // its contents checked, under a placeholder.
        let key = step
            .key
            .clone()
            .or_else(|| step.name.as_deref().map(camel_case_key))
            .unwrap_or_default();
        let kinds: Vec<&str> = [
            ("action", step.action.is_some()),
            ("code", step.code.is_some()),
            ("branchOnValue", step.branch_on_value.is_some()),
            ("branchOnExpression", step.branch_on_expression.is_some()),
            ("loopOverItems", step.loop_over_items.is_some()),
            ("loopNTimes", step.loop_n_times.is_some()),
            ("breakLoop", step.break_loop.is_some()),
            ("stopExecution", step.stop_execution.is_some()),
            ("invokeFlow", step.invoke_flow.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if kinds.len() != 1 {
            self.error(
                path,
                if kinds.is_empty() {
                    "a step needs one of `action`, `code`, `branchOnValue`, \
                     `branchOnExpression`, `loopOverItems`, `loopNTimes`, `breakLoop`, \
                     `stopExecution` or `invokeFlow`"
                        .to_string()
                } else {
                    format!(
                        "a step does one thing, but this one sets {}",
                        kinds
                            .iter()
                            .map(|kind| format!("`{kind}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )
                },
            );
            // The children still get their slots and checks.
            for (child_path, children) in children(path, step) {
                self.block(&child_path, children, scope);
            }
            return None;
        }
        if step.action.is_none() {
            if !step.inputs.is_empty() {
                self.error(
                    format!("{path}.inputs"),
                    "`inputs` belong to action steps; control steps take theirs inside their \
                     own block",
                );
            }
            if step.error_config.is_some() && step.invoke_flow.is_none() && step.code.is_none() {
                self.error(
                    format!("{path}.errorConfig"),
                    "`errorConfig` applies to action, code and `invokeFlow` steps only",
                );
            }
        }
        let key_arc: Arc<str> = Arc::from(key.as_str());
        scope.running.push(key.clone());
        let node = if let Some(action) = &step.action {
            self.action(path, step, action, slot, key_arc, scope)
        } else if let Some(code) = &step.code {
            self.code_step(path, step, code, slot, key_arc, scope)
        } else if let Some(branch) = &step.branch_on_value {
            self.branch_on_value(path, &key, slot, key_arc, branch, scope)
        } else if let Some(branch) = &step.branch_on_expression {
            self.branch_on_expression(path, &key, slot, key_arc, branch, scope)
        } else if let Some(each) = &step.loop_over_items {
            self.loop_over_items(path, slot, key_arc, each, scope)
        } else if let Some(repeat) = &step.loop_n_times {
            self.loop_n_times(path, step, slot, key_arc, repeat, scope)
        } else if step.break_loop.is_some() {
            if scope.loops.is_empty() {
                self.error(
                    format!("{path}.breakLoop"),
                    "`breakLoop` is only allowed inside a loop",
                );
            }
            Some(Node::Break { key: key_arc })
        } else if let Some(stop) = &step.stop_execution {
            self.stop(path, stop, key_arc, scope).map(Node::Stop)
        } else if let Some(invoke) = &step.invoke_flow {
            let policy = self.error_policy(path, step.error_config.as_ref());
            self.invoke_flow(path, invoke, slot, key_arc, scope)
                .and_then(|node| {
                    Some(Node::InvokeFlow(InvokeFlowNode {
                        policy: policy?,
                        ..node
                    }))
                })
        } else {
            None
        };
        scope.running.pop();
        scope.visible.insert(key);
        node
    }
}

/// The path of the field that gave a step its key.
pub(super) fn key_field(path: &str, step: &Step) -> String {
    if step.key.is_some() {
        format!("{path}.key")
    } else {
        format!("{path}.name")
    }
}

/// The nested step lists of a step, with their paths.
pub(super) fn children<'s>(path: &str, step: &'s Step) -> Vec<(String, &'s [Step])> {
    let mut lists: Vec<(String, &[Step])> = Vec::new();
    if let Some(branch) = &step.branch_on_value {
        for (index, b) in branch.branches.iter().enumerate() {
            lists.push((
                format!("{path}.branchOnValue.branches[{index}].steps"),
                &b.steps,
            ));
        }
        lists.push((format!("{path}.branchOnValue.else"), &branch.else_steps));
    }
    if let Some(branch) = &step.branch_on_expression {
        for (index, b) in branch.branches.iter().enumerate() {
            lists.push((
                format!("{path}.branchOnExpression.branches[{index}].steps"),
                &b.steps,
            ));
        }
        lists.push((
            format!("{path}.branchOnExpression.else"),
            &branch.else_steps,
        ));
    }
    if let Some(each) = &step.loop_over_items {
        lists.push((format!("{path}.loopOverItems.steps"), &each.steps));
    }
    if let Some(repeat) = &step.loop_n_times {
        lists.push((format!("{path}.loopNTimes.steps"), &repeat.steps));
    }
    lists
}
