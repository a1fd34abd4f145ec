//! The flow engine: runs one execution of a compiled flow. The trigger runs first,
//! then each step in order (`walk`), each action in a sandbox of its own through
//! [`Runtime::execute`] with its retries (`attempt`), inputs built and outputs shaped by
//! `values`; a code-native flow runs as one sandbox whose `invoke` calls become steps
//! (`invoker`), and flow calls go through the embedder's launcher (`flow_call`).

pub(crate) mod attempt;
mod flow_call;
mod invoker;
mod options;
mod values;
mod walk;

pub use options::{EngineOptions, RunEnv, Sleeper, TokioSleeper};
pub use values::{code_flow_payload, data_value, trigger_results};

use walk::Run;

use crate::flow::plan::{FlowPlan, Plan, TriggerPlan};
use crate::flow::record::ExecutionRecord;
use crate::{Call, ExecutionReport, HttpRequest, Runtime};

/// An execution could not start. Everything after the start is in the record.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no flow `{flow}` in integration `{integration}` (its flows: {known})")]
    /// The integration has no flow with the requested key.
    UnknownFlow {
        /// The key asked for.
        flow: String,
        /// The integration's name.
        integration: String,
        /// The keys of its flows, comma-separated.
        known: String,
    },
    /// An instance hook could not start (its inputs, or the sandbox refused the call).
    #[error("instance hook: {0}")]
    Hook(String),
}

/// Runs flows. Cloning is cheap.
#[derive(Clone)]
pub struct FlowEngine {
    runtime: Runtime,
    options: EngineOptions,
}

impl FlowEngine {
    /// An engine on `runtime` with the default options.
    pub fn new(runtime: Runtime) -> Self {
        Self::with_options(runtime, EngineOptions::default())
    }

    /// An engine on `runtime` with `options`.
    pub fn with_options(runtime: Runtime, options: EngineOptions) -> Self {
        FlowEngine { runtime, options }
    }

    /// The runtime the engine runs steps on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The settings of the engine.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Runs the flow `flow` of `plan` once, for `request` (what the trigger receives),
    /// and returns its record. A failing step does not make this an error: the record
    /// says `failed` and names the step.
    pub async fn run(
        &self,
        plan: &Plan,
        flow: &str,
        request: HttpRequest,
        env: &RunEnv,
    ) -> Result<ExecutionRecord, RunError> {
        let flow_plan = flow_plan(plan, flow)?;
        let mut run = Run::new(&self.runtime, &self.options, plan, flow_plan, env);
        Ok(run.execute(request).await)
    }
}

/// Flow `flow` of `plan`, or the error that names the flows it has.
fn flow_plan<'p>(plan: &'p Plan, flow: &str) -> Result<&'p FlowPlan, RunError> {
    plan.inner.flow(flow).ok_or_else(|| RunError::UnknownFlow {
        flow: flow.to_string(),
        integration: plan.inner.name.clone(),
        known: plan.flow_keys().join(", "),
    })
}

/// The instance lifecycle hook of a component trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceHook {
    /// `on-instance-deploy`: runs when an instance is deployed (and may run again).
    Deploy,
    /// `on-instance-remove`: runs when an instance is removed.
    Remove,
}

impl FlowEngine {
    /// Runs the deploy or remove hook of flow `flow`'s component trigger, with the
    /// trigger's inputs resolved against the instance's config (as a host does when it
    /// deploys or removes an instance). `None` when the flow has the built-in webhook
    /// trigger (no hook) or is code-native.
    pub async fn instance_hook(
        &self,
        plan: &Plan,
        flow: &str,
        hook: InstanceHook,
        env: &RunEnv,
    ) -> Result<Option<ExecutionReport>, RunError> {
        let flow_plan = flow_plan(plan, flow)?;
        let TriggerPlan::Component {
            entry,
            trigger,
            inputs,
            ..
        } = &flow_plan.trigger
        else {
            return Ok(None);
        };
        let run = Run::new(&self.runtime, &self.options, plan, flow_plan, env);
        let inputs = match run.values.write_fields(inputs) {
            Ok(inputs) => inputs,
            Err(error) => {
                return Err(RunError::Hook(format!(
                    "trigger inputs of flow `{flow}`: {}",
                    error.message
                )));
            }
        };
        let call = match hook {
            InstanceHook::Deploy => Call::InstanceDeploy {
                trigger: trigger.clone(),
                inputs,
            },
            InstanceHook::Remove => Call::InstanceRemove {
                trigger: trigger.clone(),
                inputs,
            },
        };
        self.runtime
            .execute(
                &entry.component,
                call,
                run.context.clone(),
                &run.caps,
                &env.limits,
            )
            .await
            .map(Some)
            .map_err(|err| RunError::Hook(format!("flow `{flow}`: {err}")))
    }
}

/// A request carrying `body` as JSON, for runs whose trigger needs nothing else.
pub fn json_request(body: impl Into<Vec<u8>>) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: String::new(),
        query: Vec::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into(),
    }
}
