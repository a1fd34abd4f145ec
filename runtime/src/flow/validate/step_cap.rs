//! The engine's cap on step runs, checked at validation: how many steps a loop with
//! a constant count runs at the least, and whether its body can end it early.

use serde_json::Value;

use super::Compiler;
use super::steps::children;
use crate::flow::definition::{Input, Step};
use crate::flow::expression::string_to_number;

impl Compiler<'_> {
    /// Refuses a constant `loopNTimes` count that cannot end early and would run more
    /// steps than the engine's cap: every execution would fail with a `limit` error.
    pub(super) fn check_step_cap(
        &mut self,
        count_path: &str,
        count: &Value,
        step: &Step,
        body: &[Step],
    ) {
        match loop_count(count) {
            Err(message) => self.error(count_path, message),
            Ok(count) if !may_end_early(body, true) => {
                let runs = min_step_runs(step);
                if runs > self.max_step_runs as u128 {
                    self.error(
                        count_path,
                        format!(
                            "`count` {count} runs at least {runs} steps, more than the \
                             {} step runs an execution may make (the engine's cap: \
                             `--max-step-runs` of `sluice serve` and `sluice flow`)",
                            self.max_step_runs
                        ),
                    );
                }
            }
            Ok(_) => {}
        }
    }
}

/// A loop count: a non-negative integer (a numeric string counts). How many
/// iterations can run is bounded by the engine's cap on step runs, not here.
pub(crate) fn loop_count(value: &Value) -> Result<u64, String> {
    let number = match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => Some(string_to_number(text)),
        _ => None,
    };
    match number {
        // 2^64 itself is not a u64.
        Some(n) if n.fract() == 0.0 && n >= 0.0 && n < u64::MAX as f64 => Ok(n as u64),
        _ => Err(format!(
            "`count` must be a whole number of 0 or more, got {value}"
        )),
    }
}

/// The fewest step runs `step` makes when it runs to its end: one for itself, and
/// for a loop whose count (or items) is constant, that many times the fewest of its
/// body. A branch counts one (its branches may be empty).
pub(super) fn min_step_runs(step: &Step) -> u128 {
    let body = |steps: &[Step]| -> u128 {
        steps
            .iter()
            .map(min_step_runs)
            .fold(0u128, u128::saturating_add)
    };
    let times = if let Some(repeat) = &step.loop_n_times {
        match &repeat.count {
            Input::Value(value) => loop_count(value).map_or(0, u128::from),
            _ => 0,
        }
        .saturating_mul(if may_end_early(&repeat.steps, true) {
            0
        } else {
            body(&repeat.steps)
        })
    } else if let Some(each) = &step.loop_over_items {
        match &each.items {
            Input::Value(Value::Array(items)) if !may_end_early(&each.steps, true) => {
                (items.len() as u128).saturating_mul(body(&each.steps))
            }
            _ => 0,
        }
    } else {
        0
    };
    times.saturating_add(1)
}

/// Whether `steps` (a loop's body when `loop_body`) can end that loop before its
/// count: a `breakLoop` of this loop (not of a loop nested in it), or a
/// `stopExecution` anywhere.
pub(super) fn may_end_early(steps: &[Step], loop_body: bool) -> bool {
    steps.iter().any(|step| {
        if step.stop_execution.is_some() || (loop_body && step.break_loop.is_some()) {
            return true;
        }
        let nested_loop = step.loop_n_times.is_some() || step.loop_over_items.is_some();
        children("", step)
            .into_iter()
            .any(|(_, inner)| may_end_early(inner, loop_body && !nested_loop))
    })
}
