//! The `sluice:flow/context` host function: who and what the current execution is.

use super::HostContext;
use crate::bindings::flow_world::sluice::flow::context as wit;

impl wit::Host for HostContext {
    fn current(&mut self) -> wasmtime::Result<wit::ExecutionContext> {
        self.charge_host_call()?;
        Ok((&self.context).into())
    }
}
