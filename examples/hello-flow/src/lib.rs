//! `hello-flow`: an example code-native flow (the `flow` world). It echoes its
//! trigger payload back as its output, and shows how a flow calls a component: a
//! payload of the form `{"invoke": {"component", "action", "input"}}` runs that action
//! through `invoker::invoke` and returns the action's output unchanged, so the host
//! can test step recording and error propagation across the call.

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
        match parsed.get("invoke") {
            None => Ok(Output {
                // The original text, not a re-serialisation, so the output is
                // byte-for-byte the payload the trigger produced.
                data: Data::Json(payload),
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
