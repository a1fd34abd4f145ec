//! One flow: its trigger, schedule and body put together into a [`FlowPlan`], and
//! the flow's queue settings (`retry`, `queue`, `singleton`, `timeLimitSeconds`).

use std::sync::Arc;

use super::{Compiler, FlowScope};
use crate::World;
use crate::flow::definition::Flow;
use crate::flow::plan::{FlowBody, FlowPlan, TriggerPlan};

impl Compiler<'_> {
    pub(super) fn flow(&mut self, path: &str, key: String, flow: &Flow) -> Option<FlowPlan> {
        let errors_before = self.errors.len();
        self.current_flow.clone_from(&key);
        let mut scope = FlowScope::for_steps();
        let trigger = match (&flow.trigger, flow.on) {
            (None, _) => Some(TriggerPlan::Webhook),
            (Some(_), Some(_)) => {
                self.error(
                    format!("{path}.trigger"),
                    "a flow that runs `on` an instance event gets no request: it takes no trigger",
                );
                None
            }
            (Some(trigger), None) => self.trigger(&format!("{path}.trigger"), trigger),
        };
        let schedule = self.schedule(path, flow);
        self.flow_policy(path, flow);
        if flow.on.is_some() && flow.synchronous {
            self.error(
                format!("{path}.synchronous"),
                "a flow that runs `on` an instance event has no webhook to answer synchronously",
            );
        }
        let body = match (&flow.code, flow.steps.is_empty()) {
            (Some(_), false) => {
                self.error(
                    format!("{path}.steps"),
                    "a code-native flow (`code`) has no steps",
                );
                None
            }
            (Some(code), true) => {
                let code_path = format!("{path}.code.component");
                match self.component(&code_path, &code.component, World::Flow) {
                    Ok(Some(entry)) => Some(FlowBody::Code {
                        key: Arc::from(code.component.as_str()),
                        entry,
                    }),
                    _ => None,
                }
            }
            (None, true) => {
                self.error(
                    format!("{path}.steps"),
                    "a flow needs at least one step (or `code` for a code-native flow)",
                );
                None
            }
            (None, false) => {
                let steps_path = format!("{path}.steps");
                self.collect_keys(&steps_path, &flow.steps, &mut scope);
                scope.next_slot = 1;
                let nodes = self.block(&steps_path, &flow.steps, &mut scope);
                Some(FlowBody::Steps(nodes))
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(FlowPlan {
            key: Arc::from(key.as_str()),
            policy: crate::flow::plan::FlowPolicy {
                singleton: flow.singleton,
                retry: flow.retry.clone(),
                fifo: flow.queue.as_ref().is_some_and(|queue| queue.fifo),
                dedupe_id: flow
                    .queue
                    .as_ref()
                    .and_then(|queue| queue.dedupe_id.clone()),
                time_limit: flow.time_limit_seconds.map(std::time::Duration::from_secs),
            },
            on: flow.on,
            synchronous: flow.synchronous,
            schedule: schedule?,
            trigger: trigger?,
            body: body?,
            slots: scope.next_slot,
        })
    }

    /// The queue settings of a flow: `retry`, `queue`, `singleton`, `timeLimitSeconds`.
    pub(super) fn flow_policy(&mut self, path: &str, flow: &Flow) {
        use crate::flow::definition::{MAX_FLOW_RETRIES, MAX_FLOW_RETRY_DELAY_MINUTES};
        let asynchronous_only = |what: &str| {
            format!("a flow that runs `on` an instance event is not queued: it takes no `{what}`")
        };
        if let Some(retry) = &flow.retry {
            if flow.on.is_some() {
                self.error(format!("{path}.retry"), asynchronous_only("retry"));
            }
            if !(1..=MAX_FLOW_RETRIES).contains(&retry.attempts) {
                self.error(
                    format!("{path}.retry.attempts"),
                    format!(
                        "retries must be between 1 and {MAX_FLOW_RETRIES}, not {}",
                        retry.attempts
                    ),
                );
            }
            if retry.delay_minutes > MAX_FLOW_RETRY_DELAY_MINUTES {
                self.error(
                    format!("{path}.retry.delayMinutes"),
                    format!(
                        "the delay must be at most {MAX_FLOW_RETRY_DELAY_MINUTES} minutes (24 hours), not {}",
                        retry.delay_minutes
                    ),
                );
            }
            if let Some(at) = &retry.unique_request_id {
                self.request_path(&format!("{path}.retry.uniqueRequestId"), at);
            }
        }
        if let Some(queue) = &flow.queue {
            if flow.on.is_some() {
                self.error(format!("{path}.queue"), asynchronous_only("queue"));
            }
            if queue.fifo && flow.synchronous {
                self.error(
                    format!("{path}.queue.fifo"),
                    "a FIFO flow runs from its queue: it cannot also be `synchronous`",
                );
            }
            if let Some(at) = &queue.dedupe_id {
                if !queue.fifo {
                    self.error(
                        format!("{path}.queue.dedupeId"),
                        "dedupe ids apply to FIFO flows: set `fifo: true`",
                    );
                }
                self.request_path(&format!("{path}.queue.dedupeId"), at);
            }
        }
        if flow.singleton && flow.schedule.is_none() {
            self.error(
                format!("{path}.singleton"),
                "`singleton` applies to scheduled runs: the flow has no `schedule`",
            );
        }
        if let Some(seconds) = flow.time_limit_seconds
            && !(1..=86_400).contains(&seconds)
        {
            self.error(
                format!("{path}.timeLimitSeconds"),
                format!("the time limit must be between 1 and 86400 seconds, not {seconds}"),
            );
        }
    }
}
