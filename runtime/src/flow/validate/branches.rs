//! Branch steps: `branchOnValue` and `branchOnExpression`, their branch names and
//! conditions, and which steps' results the steps after a branch may read.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::{Compiler, FlowScope};
use crate::flow::definition::{BranchOnExpression, BranchOnValue, Input};
use crate::flow::expression::Expr;
use crate::flow::plan::{BranchOnExpressionNode, BranchOnValueNode, CInput, Node};

impl Compiler<'_> {
    /// A `branchOnValue` step: every branch's steps see the branch step's key (its
    /// value was read first), and the steps after it see the steps of any branch.
    pub(super) fn branch_on_value(
        &mut self,
        path: &str,
        key: &str,
        slot: usize,
        key_arc: Arc<str>,
        branch: &BranchOnValue,
        scope: &mut FlowScope,
    ) -> Option<Node> {
        let value = self.input(&format!("{path}.branchOnValue.value"), &branch.value, scope);
        let names = self.branch_names(
            &format!("{path}.branchOnValue"),
            branch.branches.iter().map(|b| b.name.as_str()),
        );
        let before = scope.visible.clone();
        scope.visible.insert(key.to_string());
        let mut added = HashSet::new();
        let mut branches = Vec::new();
        for (index, (name, b)) in names.iter().zip(&branch.branches).enumerate() {
            let branch_path = format!("{path}.branchOnValue.branches[{index}]");
            let value = self.input(&format!("{branch_path}.value"), &b.value, scope);
            let steps = self.block(&format!("{branch_path}.steps"), &b.steps, scope);
            added.extend(scope.visible.drain().filter(|k| !before.contains(k)));
            scope.visible = before.clone();
            scope.visible.insert(key.to_string());
            if let Some(value) = value {
                branches.push((Arc::clone(name), value, steps));
            }
        }
        let else_steps = self.block(
            &format!("{path}.branchOnValue.else"),
            &branch.else_steps,
            scope,
        );
        scope.visible.extend(added);
        value.map(|value| {
            Node::BranchOnValue(BranchOnValueNode {
                slot,
                key: key_arc,
                value,
                branches,
                else_steps,
            })
        })
    }

    /// A `branchOnExpression` step: like `branchOnValue`, but each branch has a
    /// condition of its own.
    pub(super) fn branch_on_expression(
        &mut self,
        path: &str,
        key: &str,
        slot: usize,
        key_arc: Arc<str>,
        branch: &BranchOnExpression,
        scope: &mut FlowScope,
    ) -> Option<Node> {
        let names = self.branch_names(
            &format!("{path}.branchOnExpression"),
            branch.branches.iter().map(|b| b.name.as_str()),
        );
        let before = scope.visible.clone();
        let mut added = HashSet::new();
        let mut branches = Vec::new();
        for (index, (name, b)) in names.iter().zip(&branch.branches).enumerate() {
            let branch_path = format!("{path}.branchOnExpression.branches[{index}]");
            // Conditions are evaluated before the branch step has a result.
            let condition =
                self.condition(&format!("{branch_path}.condition"), &b.condition.0, scope);
            scope.visible.insert(key.to_string());
            let steps = self.block(&format!("{branch_path}.steps"), &b.steps, scope);
            added.extend(scope.visible.drain().filter(|k| !before.contains(k)));
            scope.visible = before.clone();
            if let Some(condition) = condition {
                branches.push((Arc::clone(name), condition, steps));
            }
        }
        scope.visible.insert(key.to_string());
        let else_steps = self.block(
            &format!("{path}.branchOnExpression.else"),
            &branch.else_steps,
            scope,
        );
        scope.visible.extend(added);
        Some(Node::BranchOnExpression(BranchOnExpressionNode {
            slot,
            key: key_arc,
            branches,
            else_steps,
        }))
    }

    pub(super) fn branch_names<'n>(
        &mut self,
        path: &str,
        names: impl Iterator<Item = &'n str>,
    ) -> Vec<Arc<str>> {
        let names: Vec<&str> = names.collect();
        if names.is_empty() {
            self.error(
                format!("{path}.branches"),
                "a branch step needs at least one branch",
            );
        }
        let mut seen = HashSet::new();
        for (index, name) in names.iter().enumerate() {
            let name_path = format!("{path}.branches[{index}].name");
            if name.trim().is_empty() {
                self.error(name_path, "a branch needs a name");
            } else if name.eq_ignore_ascii_case("else") {
                self.error(
                    name_path,
                    "`Else` is the name of the `else` branch; give this branch another name",
                );
            } else if !seen.insert(*name) {
                self.error(name_path, format!("duplicate branch name `{name}`"));
            }
        }
        names.into_iter().map(Arc::from).collect()
    }

    pub(super) fn condition(
        &mut self,
        path: &str,
        condition: &Value,
        scope: &mut FlowScope,
    ) -> Option<Expr<CInput>> {
        let parsed = match Expr::parse(condition) {
            Ok(parsed) => parsed,
            Err(err) => {
                self.error(format!("{path}{}", err.path), err.message);
                return None;
            }
        };
        self.condition_terms(path, &parsed, scope)
    }

    /// Compiles the terms of a parsed condition, each reported at its own path
    /// (`condition[2][1]`), every bad term at once.
    pub(super) fn condition_terms(
        &mut self,
        path: &str,
        expr: &Expr<Input>,
        scope: &mut FlowScope,
    ) -> Option<Expr<CInput>> {
        let mut group = |this: &mut Self, children: &[Expr<Input>]| {
            let compiled: Vec<Option<Expr<CInput>>> = children
                .iter()
                .enumerate()
                .map(|(index, child)| {
                    this.condition_terms(&format!("{path}[{}]", index + 1), child, scope)
                })
                .collect();
            compiled.into_iter().collect::<Option<Vec<_>>>()
        };
        match expr {
            Expr::And(children) => group(self, children).map(Expr::And),
            Expr::Or(children) => group(self, children).map(Expr::Or),
            Expr::Compare { op, left, right } => {
                let left = self.input(&format!("{path}[1]"), left, scope);
                let right = right
                    .as_ref()
                    .map(|right| self.input(&format!("{path}[2]"), right, scope));
                Some(Expr::Compare {
                    op: *op,
                    left: left?,
                    right: match right {
                        Some(right) => Some(right?),
                        None => None,
                    },
                })
            }
        }
    }
}
