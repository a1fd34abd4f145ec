//! Loop steps: `loopOverItems` (its items a list) and `loopNTimes` (its count within
//! the cap on step runs), and the body that only they may `breakLoop` out of.

use std::sync::Arc;

use super::{Compiler, FlowScope};
use crate::flow::definition::{LoopNTimes, LoopOverItems, Step};
use crate::flow::plan::{CInput, LoopNode, Node};

impl Compiler<'_> {
    /// A `loopOverItems` step: its `items` (a list when constant) and its body.
    pub(super) fn loop_over_items(
        &mut self,
        path: &str,
        slot: usize,
        key_arc: Arc<str>,
        each: &LoopOverItems,
        scope: &mut FlowScope,
    ) -> Option<Node> {
        let items_path = format!("{path}.loopOverItems.items");
        let source = self.input(&items_path, &each.items, scope);
        if let Some(items) = source.as_ref().and_then(CInput::as_const)
            && !items.is_array()
        {
            self.error(&items_path, format!("`items` must be a list, got {items}"));
        }
        self.loop_node(
            path,
            "loopOverItems",
            &each.steps,
            slot,
            key_arc,
            source,
            scope,
        )
        .map(Node::LoopOverItems)
    }

    /// A `loopNTimes` step: its `count` (checked against the cap on step runs when
    /// constant) and its body.
    pub(super) fn loop_n_times(
        &mut self,
        path: &str,
        step: &Step,
        slot: usize,
        key_arc: Arc<str>,
        repeat: &LoopNTimes,
        scope: &mut FlowScope,
    ) -> Option<Node> {
        let count_path = format!("{path}.loopNTimes.count");
        let source = self.input(&count_path, &repeat.count, scope);
        if let Some(count) = source.as_ref().and_then(CInput::as_const) {
            self.check_step_cap(&count_path, count, step, &repeat.steps);
        }
        self.loop_node(
            path,
            "loopNTimes",
            &repeat.steps,
            slot,
            key_arc,
            source,
            scope,
        )
        .map(Node::LoopNTimes)
    }

    /// The body of either loop, compiled with the loop as the innermost one, so that
    /// `breakLoop`, `currentItem` and `index` inside it refer to it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn loop_node(
        &mut self,
        path: &str,
        kind: &str,
        steps: &[Step],
        slot: usize,
        key: Arc<str>,
        source: Option<CInput>,
        scope: &mut FlowScope,
    ) -> Option<LoopNode> {
        let steps_path = format!("{path}.{kind}.steps");
        if steps.is_empty() {
            self.error(&steps_path, "a loop needs at least one step");
        }
        scope.loops.push(key.to_string());
        let first = scope.next_slot;
        let body = self.block(&steps_path, steps, scope);
        let body_slots = first..scope.next_slot;
        scope.loops.pop();
        Some(LoopNode {
            slot,
            key,
            source: source?,
            body,
            body_slots,
        })
    }
}
