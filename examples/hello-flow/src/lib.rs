//! `hello-flow`: an example code-native flow (the `flow` world). It echoes its
//! trigger payload back as its output, and shows how a flow calls a component: a
//! payload of the form `{"invoke": {"component", "action", "input"}}` runs that action
//! through `invoker::invoke` and returns the action's output unchanged, so the host
//! can test step recording and error propagation across the call. Likewise
//! `{"invokeFlow": {"flow", "payload", "async"}}` runs another flow of the instance
//! (`invoke-flow`, or `invoke-flow-async` when `async` is true, which returns
//! `{"executionId"}`).

use serde_json::{Value, json};
use sluice_sdk::flow::exports::sluice::flow::code_flow::Guest;
use sluice_sdk::flow::sluice::flow::types::{Data, Error, ExecutionContext, Output};
use sluice_sdk::flow::sluice::flow::{invoker, log};

struct HelloFlow;

sluice_sdk::flow::export_flow!(HelloFlow);

impl Guest for HelloFlow {
    fn manifest() -> String {
        json!({
            "name": "hello-flow",
            "description": "Echoes its payload, or invokes the component action the payload names.",
            "trigger": {"type": "webhook"},
        })
        .to_string()
    }

    fn on_execution(ctx: ExecutionContext, payload: String) -> Result<Output, Error> {
        log::write(
            log::Level::Info,
            "hello-flow execution",
            Some(&json!({"attempt": ctx.attempt, "bytes": payload.len()}).to_string()),
        );
        let parsed: Value = serde_json::from_str(&payload)
            .map_err(|e| Error::InvalidInput(format!("payload is not JSON: {e}")))?;
        // Run by the flow engine, the payload is the trigger's result
        // (`{method, path, query, headers, body, branch}`) and the request is its body;
        // run directly (the harness, `sluice run --payload`), it is the request itself.
        let is_trigger_result = parsed.get("body").is_some() && parsed.get("headers").is_some();
        let request = if is_trigger_result {
            parsed["body"].clone()
        } else {
            parsed
        };
        if let Some(call) = request.get("invokeFlow") {
            return invoke_flow(call);
        }
        match request.get("invoke") {
            None => Ok(Output {
                data: Data::Json(request.to_string()),
                content_type: None,
                status: None,
                headers: Vec::new(),
                branch: None,
            }),
            Some(call) => {
                let field = |name: &str| {
                    call.get(name).and_then(Value::as_str).ok_or_else(|| {
                        Error::InvalidInput(format!("`invoke.{name}` must be a string"))
                    })
                };
                let component = field("component")?;
                let action = field("action")?;
                // A missing input means "no parameters", which actions read as `{}`.
                let input = call.get("input").cloned().unwrap_or_else(|| json!({}));
                // Errors pass through unchanged too: the component's error kind is
                // what tells the host whether to retry the flow.
                invoker::invoke(component, action, &input.to_string())
            }
        }
    }
}

/// Runs the flow `call` names: waits for its output, or queues it and returns its id.
fn invoke_flow(call: &Value) -> Result<Output, Error> {
    let flow = call
        .get("flow")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::InvalidInput("`invokeFlow.flow` must be a string".into()))?;
    let payload = call.get("payload").cloned().unwrap_or_else(|| json!({}));
    if call.get("async").and_then(Value::as_bool).unwrap_or(false) {
        let id = invoker::invoke_flow_async(flow, &payload.to_string())?;
        return Ok(Output {
            data: Data::Json(json!({ "executionId": id }).to_string()),
            content_type: None,
            status: None,
            headers: Vec::new(),
            branch: None,
        });
    }
    invoker::invoke_flow(flow, &payload.to_string())
}
