//! Calls from a code-native flow into components and other flows: the [`Invoker`]
//! trait the flow executor implements, and the `sluice:flow/invoker` host functions.
//!
//! The runtime does not decide what a component key or a flow name refers to; the
//! embedder's invoker resolves it and runs the target in a sandbox of its own.

use async_trait::async_trait;

use super::HostContext;
use crate::bindings::flow_world::sluice::flow::invoker as wit;
use crate::types::{ExecutionContext, GuestError, Output};

/// Runs actions and flows on behalf of a code-native flow.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Runs `action` of the component the flow knows as `component`.
    async fn invoke(
        &self,
        caller: &ExecutionContext,
        component: &str,
        action: &str,
        input: String,
    ) -> Result<Output, GuestError>;

    /// Runs the flow `name` of the caller's instance with `payload` and waits for
    /// its result.
    async fn invoke_flow(
        &self,
        caller: &ExecutionContext,
        name: &str,
        payload: String,
    ) -> Result<Output, GuestError>;

    /// Queues the flow `name` of the caller's instance with `payload`; returns the new
    /// execution's id. Invokers written before `invoke-flow-async` existed answer it
    /// with a fatal error, so adding the function broke none of them.
    async fn invoke_flow_async(
        &self,
        _caller: &ExecutionContext,
        name: &str,
        _payload: String,
    ) -> Result<String, GuestError> {
        Err(GuestError::fatal(format!(
            "invoke-flow-async (`{name}`) is not supported by this invoker"
        )))
    }
}

fn not_configured(what: &str) -> crate::bindings::wit::Error {
    crate::bindings::wit::Error::Fatal(format!(
        "{what} is not available: this execution was started without an invoker \
         (run the flow through the flow executor)"
    ))
}

impl wit::Host for HostContext {
    async fn invoke(
        &mut self,
        component: String,
        action: String,
        input: String,
    ) -> wasmtime::Result<Result<wit::Output, wit::Error>> {
        self.charge_host_call()?;
        let Some(invoker) = self.caps.invoker.clone() else {
            return Ok(Err(not_configured("invoke")));
        };
        let result = invoker
            .invoke(&self.context, &component, &action, input)
            .await;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn invoke_flow(
        &mut self,
        name: String,
        payload: String,
    ) -> wasmtime::Result<Result<wit::Output, wit::Error>> {
        self.charge_host_call()?;
        let Some(invoker) = self.caps.invoker.clone() else {
            return Ok(Err(not_configured("invoke-flow")));
        };
        let result = invoker.invoke_flow(&self.context, &name, payload).await;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn invoke_flow_async(
        &mut self,
        name: String,
        payload: String,
    ) -> wasmtime::Result<Result<String, wit::Error>> {
        self.charge_host_call()?;
        let Some(invoker) = self.caps.invoker.clone() else {
            return Ok(Err(not_configured("invoke-flow-async")));
        };
        let result = invoker
            .invoke_flow_async(&self.context, &name, payload)
            .await;
        Ok(result.map_err(Into::into))
    }
}
