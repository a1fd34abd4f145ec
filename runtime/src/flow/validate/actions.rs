//! Steps that call out: `action` (component, action and inputs checked against its
//! schema), `invokeFlow`, `stopExecution`, and the error policy of a step.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::triggers::{response_headers, response_status};
use super::{
    Compiler, DEFAULT_DELAY_SECONDS, DEFAULT_RETRIES, FlowScope, MAX_DELAY_SECONDS, MAX_RETRIES,
    key_path,
};
use crate::World;
use crate::flow::catalog::InputSchema;
use crate::flow::definition::{ErrorConfig, ErrorHandler, Input, InvokeFlow, Step};
use crate::flow::plan::{ActionNode, CInput, ErrorPolicy, Fields, InvokeFlowNode, Node, StopNode};

impl Compiler<'_> {
    /// An `invokeFlow` step; its error policy is filled in by the caller.
    pub(super) fn invoke_flow(
        &mut self,
        path: &str,
        invoke: &InvokeFlow,
        slot: usize,
        key: Arc<str>,
        scope: &mut FlowScope,
    ) -> Option<InvokeFlowNode> {
        let base = format!("{path}.invokeFlow");
        let payload = match &invoke.payload {
            Some(input) => self.input(&format!("{base}.payload"), input, scope),
            None => Some(CInput::constant(Value::Object(serde_json::Map::new()))),
        };
        let flow_path = format!("{base}.flow");
        match self.flow_events.get(&invoke.flow) {
            None => {
                let mut known: Vec<&str> = self.flow_events.keys().map(String::as_str).collect();
                known.sort_unstable();
                self.error(
                    flow_path,
                    format!(
                        "unknown flow `{}`: the integration's flows are {}",
                        invoke.flow,
                        known.join(", ")
                    ),
                );
                return None;
            }
            Some(Some(event)) => {
                let event = serde_json::to_value(event)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_string))
                    .unwrap_or_default();
                self.error(
                    flow_path,
                    format!(
                        "flow `{}` runs `on: {event}` and cannot be invoked",
                        invoke.flow
                    ),
                );
                return None;
            }
            Some(None) => {}
        }
        if invoke.synchronous && invoke.flow == self.current_flow {
            self.error(
                format!("{base}.synchronous"),
                format!(
                    "flow `{}` invokes itself synchronously, so every run would wait on the \
                     next; set `synchronous: false` to queue the next run instead",
                    invoke.flow
                ),
            );
            return None;
        }
        Some(InvokeFlowNode {
            slot,
            key,
            flow: Arc::from(invoke.flow.as_str()),
            payload: payload?,
            synchronous: invoke.synchronous,
            // Filled in by the caller from the step's `errorConfig`.
            policy: ErrorPolicy::FAIL,
        })
    }

    pub(super) fn stop(
        &mut self,
        path: &str,
        stop: &crate::flow::definition::StopExecution,
        key: Arc<str>,
        scope: &mut FlowScope,
    ) -> Option<StopNode> {
        let base = format!("{path}.stopExecution");
        let mut field = |this: &mut Self, name: &str, input: &Option<Input>| {
            input
                .as_ref()
                .map(|input| this.input(&format!("{base}.{name}"), input, scope))
        };
        let status = field(self, "status", &stop.status);
        let headers = field(self, "headers", &stop.headers);
        let content_type = field(self, "contentType", &stop.content_type);
        let body = field(self, "body", &stop.body);
        if let Some(Some(status)) = &status
            && let Some(value) = status.as_const()
            && let Err(message) = response_status(value)
        {
            self.error(format!("{base}.status"), message);
        }
        if let Some(Some(headers)) = &headers
            && let Some(value) = headers.as_const()
            && let Err(message) = response_headers(value)
        {
            self.error(format!("{base}.headers"), message);
        }
        if let Some(Some(content_type)) = &content_type
            && let Some(value) = content_type.as_const()
            && !value.is_string()
        {
            self.error(
                format!("{base}.contentType"),
                "`contentType` must be a string",
            );
        }
        // `None` inside means the input had an error, already reported.
        Some(StopNode {
            key,
            status: status.map(|s| s.ok_or(())).transpose().ok()?,
            headers: headers.map(|s| s.ok_or(())).transpose().ok()?,
            content_type: content_type.map(|s| s.ok_or(())).transpose().ok()?,
            body: body.map(|s| s.ok_or(())).transpose().ok()?,
        })
    }

    pub(super) fn action(
        &mut self,
        path: &str,
        step: &Step,
        action: &str,
        slot: usize,
        key: Arc<str>,
        scope: &mut FlowScope,
    ) -> Option<Node> {
        let action_path = format!("{path}.action");
        let policy = self.error_policy(path, step.error_config.as_ref());
        let inputs = self.fields(&format!("{path}.inputs"), &step.inputs, scope);
        let Some((component_key, action_name)) = action.split_once('.') else {
            self.error(
                action_path,
                format!("`{action}` is not `component.action` (for example `hello.echo`)"),
            );
            return None;
        };
        let entry = self
            .component(&action_path, component_key, World::Component)
            .ok()??;
        let Some(schema) = entry.manifest.actions.get(action_name).cloned() else {
            let known: Vec<&str> = entry.manifest.actions.keys().map(String::as_str).collect();
            self.error(
                action_path,
                format!(
                    "unknown action `{action_name}` of component `{component_key}` (its actions: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            return None;
        };
        self.check_inputs(path, &step.inputs, &inputs, &schema, action);
        Some(Node::Action(ActionNode {
            slot,
            key,
            component_key: Arc::from(component_key),
            action: action_name.to_string(),
            entry,
            inputs,
            schema,
            policy: policy?,
        }))
    }

    /// Checks a step's inputs against the schema before anything runs: names the
    /// schema does not declare, required names missing, and constant values.
    pub(super) fn check_inputs(
        &mut self,
        path: &str,
        declared: &BTreeMap<String, Input>,
        compiled: &Fields,
        schema: &InputSchema,
        what: &str,
    ) {
        let inputs_path = format!("{path}.inputs");
        if let Some(properties) = schema.properties() {
            for name in declared.keys() {
                if !properties.contains(name) {
                    self.error(
                        key_path(&inputs_path, name),
                        format!(
                            "`{name}` is not an input of `{what}` (its inputs: {})",
                            properties.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
        }
        for name in schema.required() {
            if !declared.contains_key(name) {
                self.error(
                    &inputs_path,
                    format!("missing required input `{name}` of `{what}`"),
                );
            }
        }
        let constants: serde_json::Map<String, Value> = compiled
            .iter()
            .filter_map(|(name, _, input)| {
                input.as_const().map(|value| (name.clone(), value.clone()))
            })
            .collect();
        if let Err(problems) = schema.check_partial(&Value::Object(constants)) {
            for (pointer, message) in problems {
                let mut segments = pointer.split('/').skip(1);
                let at = match segments.next() {
                    Some(name) => {
                        let name = name.replace("~1", "/").replace("~0", "~");
                        let mut at = key_path(&inputs_path, &name);
                        for rest in segments {
                            at = format!("{at}/{rest}");
                        }
                        at
                    }
                    None => inputs_path.clone(),
                };
                self.error(
                    at,
                    format!("does not match the input schema of `{what}`: {message}"),
                );
            }
        }
    }

    pub(super) fn error_policy(
        &mut self,
        path: &str,
        config: Option<&ErrorConfig>,
    ) -> Option<ErrorPolicy> {
        let Some(config) = config else {
            return Some(ErrorPolicy::FAIL);
        };
        let base = format!("{path}.errorConfig");
        let before = self.errors.len();
        if config.error_handler_type != ErrorHandler::Retry {
            for (field, set) in [
                ("maxAttempts", config.max_attempts.is_some()),
                ("delaySeconds", config.delay_seconds.is_some()),
                ("usesExponentialBackoff", config.uses_exponential_backoff),
                ("ignoreFinalError", config.ignore_final_error),
            ] {
                if set {
                    self.error(
                        format!("{base}.{field}"),
                        format!("`{field}` applies only when `errorHandlerType` is `retry`"),
                    );
                }
            }
        }
        let max_retries = config.max_attempts.unwrap_or(DEFAULT_RETRIES);
        if max_retries > MAX_RETRIES {
            self.error(
                format!("{base}.maxAttempts"),
                format!("`maxAttempts` is 0 to {MAX_RETRIES}, got {max_retries}"),
            );
        }
        let delay_seconds = config.delay_seconds.unwrap_or(DEFAULT_DELAY_SECONDS);
        if delay_seconds > MAX_DELAY_SECONDS {
            self.error(
                format!("{base}.delaySeconds"),
                format!("`delaySeconds` is 0 to {MAX_DELAY_SECONDS}, got {delay_seconds}"),
            );
        }
        (self.errors.len() == before).then_some(ErrorPolicy {
            handler: config.error_handler_type,
            max_retries,
            delay_seconds,
            exponential: config.uses_exponential_backoff,
            ignore_final_error: config.ignore_final_error,
        })
    }
}
