//! Code-native flows: [`Flow`] declares one (name, description, [`FlowTrigger`]) with
//! its `on_execution` handler, and [`FlowContext`] is the handler's [`Context`] plus
//! calls into components ([`FlowContext::invoke`]) and other flows.

use std::ops::{Deref, DerefMut};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::bindings::flow::sluice::flow::invoker;
use crate::bindings::flow::sluice::flow::types as wit;
use crate::context::Context;
use crate::error::{Error, parse_json};
use crate::output::{IntoOutput, Output, to_json_text};

type ExecutionFn = Box<dyn Fn(&mut FlowContext, &str) -> Result<Output, Error>>;

/// What starts a code-native flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowTrigger {
    manifest: Value,
}

impl FlowTrigger {
    /// An HTTP request on the flow's webhook URL (the payload is the request body).
    pub fn webhook() -> Self {
        Self {
            manifest: json!({ "type": "webhook" }),
        }
    }

    /// A schedule: a cron expression evaluated in `timezone` (an IANA name).
    pub fn schedule(cron: impl Into<String>, timezone: impl Into<String>) -> Self {
        Self {
            manifest: json!({ "type": "schedule", "cron": cron.into(), "timezone": timezone.into() }),
        }
    }

    /// The deployment of an instance.
    pub fn instance_deploy() -> Self {
        Self {
            manifest: json!({ "type": "instance-deploy" }),
        }
    }

    /// The removal of an instance.
    pub fn instance_remove() -> Self {
        Self {
            manifest: json!({ "type": "instance-remove" }),
        }
    }

    /// Another flow, through [`FlowContext::invoke_flow`].
    pub fn flow() -> Self {
        Self {
            manifest: json!({ "type": "flow" }),
        }
    }
}

/// A code-native flow: the one registration point of a flow crate. Build it in a
/// function and hand that function to [`export_flow!`](crate::export_flow!):
///
/// ```no_run
/// use sluice_sdk::prelude::*;
///
/// #[derive(Deserialize)]
/// struct IssueEvent {
///     issue: Value,
/// }
///
/// fn sync(ctx: &mut FlowContext, event: IssueEvent) -> Result<Value, Error> {
///     let ticket: Value = ctx.invoke_json("zendesk", "createTicket", &json!({
///         "subject": event.issue["title"],
///     }))?;
///     Ok(json!({ "ticket": ticket["id"] }))
/// }
///
/// fn flow() -> Flow {
///     Flow::new("github-zendesk-sync")
///         .description("Opens a Zendesk ticket for each new GitHub issue")
///         .trigger(FlowTrigger::webhook())
///         .on_execution(sync)
/// }
///
/// sluice_sdk::export_flow!(flow);
/// ```
pub struct Flow {
    name: String,
    description: String,
    trigger: FlowTrigger,
    on_execution: Option<ExecutionFn>,
}

impl Flow {
    /// A flow named `name` within its integration, triggered by a webhook unless
    /// [`trigger`](Self::trigger) says otherwise.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            trigger: FlowTrigger::webhook(),
            on_execution: None,
        }
    }

    /// Free-text description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// What starts the flow.
    pub fn trigger(mut self, trigger: FlowTrigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// The handler of each execution: `fn(&mut FlowContext, Payload) -> Result<impl
    /// IntoOutput, Error>`. The trigger's payload is deserialized into `Payload` (a
    /// mismatch is [`Error::InvalidInput`]; take `serde_json::Value` for any JSON).
    pub fn on_execution<P, O, F>(mut self, handler: F) -> Self
    where
        P: DeserializeOwned + 'static,
        O: IntoOutput + 'static,
        F: Fn(&mut FlowContext, P) -> Result<O, Error> + 'static,
    {
        self.on_execution = Some(Box::new(move |ctx, payload| {
            let payload = parse_json::<P>(payload, "payload")?;
            handler(ctx, payload).map(IntoOutput::into_output)
        }));
        self
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The manifest, as docs/manifest.md describes it.
    pub fn manifest(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "trigger": self.trigger.manifest,
        })
    }

    /// Checks the declaration; returns every problem found.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("flow name is empty".to_string());
        }
        if self.on_execution.is_none() {
            problems.push(format!("flow `{}` has no on_execution handler", self.name));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    #[doc(hidden)]
    pub fn run(&self, ctx: &mut FlowContext, payload: &str) -> Result<Output, Error> {
        match &self.on_execution {
            Some(handler) => handler(ctx, payload),
            None => Err(Error::fatal(format!(
                "flow `{}` declares no on_execution handler",
                self.name
            ))),
        }
    }
}

/// The context of a code-native flow: everything [`Context`] offers (through
/// `Deref`), plus calls into components and other flows. Each call runs in its own
/// sandbox and is recorded as a step of the execution; its error comes back with the
/// kind the callee chose, so `?` propagates retryability unchanged.
#[derive(Debug, Clone)]
pub struct FlowContext {
    ctx: Context,
}

impl FlowContext {
    #[doc(hidden)]
    pub fn from_raw(raw: wit::ExecutionContext) -> Self {
        Self {
            ctx: Context::from_raw(raw),
        }
    }

    /// Runs `action` of `component` (a component key the flow's integration declares)
    /// with `input` serialized to JSON.
    pub fn invoke(
        &mut self,
        component: &str,
        action: &str,
        input: &(impl Serialize + ?Sized),
    ) -> Result<Output, Error> {
        let input = to_json_text(input)?;
        invoker::invoke(component, action, &input)
            .map(Output::from)
            .map_err(Error::from)
    }

    /// [`invoke`](Self::invoke), then parses the action's JSON output as `R`
    /// (`ctx.invoke_json::<Ticket>("zendesk", "createTicket", &input)`).
    pub fn invoke_json<R: DeserializeOwned>(
        &mut self,
        component: &str,
        action: &str,
        input: &(impl Serialize + ?Sized),
    ) -> Result<R, Error> {
        self.invoke(component, action, input)?
            .parse_json()
            .map_err(|e| e.context(format!("output of `{component}`/`{action}`")))
    }

    /// Runs the instance's flow `name` with `payload` serialized to JSON as a child
    /// execution, waits for it (within the host's synchronous deadline), and returns
    /// its response. A missed deadline is a retryable error naming the child, which
    /// keeps running.
    pub fn invoke_flow(
        &mut self,
        name: &str,
        payload: &(impl Serialize + ?Sized),
    ) -> Result<Output, Error> {
        let payload = to_json_text(payload)?;
        invoker::invoke_flow(name, &payload)
            .map(Output::from)
            .map_err(Error::from)
    }

    /// Queues the instance's flow `name` with `payload` serialized to JSON as a child
    /// execution, and returns its execution id without waiting for it.
    pub fn invoke_flow_async(
        &mut self,
        name: &str,
        payload: &(impl Serialize + ?Sized),
    ) -> Result<String, Error> {
        let payload = to_json_text(payload)?;
        invoker::invoke_flow_async(name, &payload).map_err(Error::from)
    }

    /// [`invoke_flow`](Self::invoke_flow), then parses the flow's JSON result as `R`.
    pub fn invoke_flow_json<R: DeserializeOwned>(
        &mut self,
        name: &str,
        payload: &(impl Serialize + ?Sized),
    ) -> Result<R, Error> {
        self.invoke_flow(name, payload)?
            .parse_json()
            .map_err(|e| e.context(format!("result of flow `{name}`")))
    }
}

impl Deref for FlowContext {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl DerefMut for FlowContext {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

/// Glue between the raw `code-flow` exports and a [`Flow`]; what
/// [`export_flow!`](crate::export_flow!) expands to calls these.
#[doc(hidden)]
pub mod export {
    use super::*;

    pub fn manifest(flow: &Flow) -> String {
        flow.manifest().to_string()
    }

    pub fn on_execution(
        flow: &Flow,
        ctx: wit::ExecutionContext,
        payload: &str,
    ) -> Result<wit::Output, wit::Error> {
        let mut ctx = FlowContext::from_raw(ctx);
        Ok(flow.run(&mut ctx, payload).and_then(Output::into_wit)?)
    }
}
