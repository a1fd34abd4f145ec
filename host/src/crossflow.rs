//! Cross-flow invocation on the server: the engine's [`FlowLauncher`], which turns
//! `invokeFlow` steps and `invoke-flow` calls into child executions of the caller's
//! instance (trigger `flow`, `parent_id` set), run at once or queued.

use std::sync::{OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sluice_runtime::flow::{FlowLaunch, FlowLauncher, Launched};
use sluice_runtime::{GuestError, GuestErrorKind};

use crate::api::error::ApiError;
use crate::app::{AppState, Shared};
use crate::ingress::Accepted;
use crate::queue::{self, NewExecution, TriggerKind};
use crate::store::executions::Payload;
use crate::store::now_ms;

/// Most ancestors an execution may have: a chain of flow calls (a flow calling itself,
/// directly or through others) stops at the ninth execution.
pub const MAX_DEPTH: usize = 8;

/// The header naming the parent execution in a child's trigger request.
pub const PARENT_HEADER: &str = "sluice-parent-execution-id";

/// Starts child executions for the engine. Bound to the state after the state (which
/// owns the engine, which owns this) is built; it holds the state weakly.
#[derive(Default)]
pub struct HostLauncher {
    state: OnceLock<Weak<Shared>>,
}

impl HostLauncher {
    /// Gives the launcher the state it starts executions in.
    pub fn bind(&self, state: &AppState) {
        // A second bind would be a programming error; the first state stays.
        let _ = self.state.set(state.downgrade());
    }

    fn state(&self) -> Result<AppState, GuestError> {
        self.state
            .get()
            .and_then(AppState::upgrade)
            .ok_or_else(|| GuestError {
                kind: GuestErrorKind::Retryable,
                message: "the server is shutting down and starts no flows".into(),
                connection: None,
            })
    }
}

fn error(kind: GuestErrorKind, message: String) -> GuestError {
    GuestError {
        kind,
        message,
        connection: None,
    }
}

/// A store or queue failure as the caller's error: the server's own trouble may pass,
/// a refusal (no such instance) will not.
fn from_api(flow: &str, err: ApiError) -> GuestError {
    let kind = if err.status.is_server_error() {
        GuestErrorKind::Retryable
    } else {
        GuestErrorKind::Fatal
    };
    error(kind, format!("cannot start flow `{flow}`: {}", err.message))
}

/// How many ancestors execution `id` has (stops counting past [`MAX_DEPTH`]).
async fn ancestors(
    state: &AppState,
    tenant: &str,
    id: &str,
    flow: &str,
) -> Result<usize, GuestError> {
    let mut count = 0;
    let mut current = id.to_string();
    while count <= MAX_DEPTH {
        let execution = state
            .store
            .get_execution(tenant, &current)
            .await
            .map_err(|err| from_api(flow, err.into()))?;
        match execution.and_then(|execution| execution.parent_id) {
            Some(parent) => {
                count += 1;
                current = parent;
            }
            None => break,
        }
    }
    Ok(count)
}

#[async_trait]
impl FlowLauncher for HostLauncher {
    async fn launch(&self, launch: FlowLaunch) -> Result<Launched, GuestError> {
        let state = self.state()?;
        let parent = &launch.parent;
        let flow = launch.flow.as_str();
        let depth = ancestors(&state, &parent.tenant_id, &parent.execution_id, flow).await?;
        if depth >= MAX_DEPTH {
            return Err(error(
                GuestErrorKind::Fatal,
                format!(
                    "flow `{flow}` not started: execution {} already has {depth} ancestor \
                     executions, and flow calls nest at most {MAX_DEPTH} deep (does a flow \
                     call itself without a condition that ends it?)",
                    parent.execution_id
                ),
            ));
        }
        let new = NewExecution {
            tenant_id: parent.tenant_id.clone(),
            instance_id: parent.instance_id.clone(),
            flow_key: launch.flow.clone(),
            trigger: TriggerKind::Flow,
            payload: Payload::host_json(
                (PARENT_HEADER, &parent.execution_id),
                launch.payload.clone().into_bytes(),
                now_ms(),
            ),
            parent_id: Some(parent.execution_id.clone()),
            replay_of: None,
            singleton: false,
        };
        if !launch.synchronous {
            let enqueued = queue::enqueue(&state, new)
                .await
                .map_err(|err| from_api(flow, err))?;
            return Ok(Launched::Queued {
                execution_id: enqueued.execution_id().to_string(),
            });
        }
        let policy = queue::flow_policy(&state, &parent.tenant_id, &parent.instance_id, flow)
            .await
            .map_err(|err| from_api(flow, err))?;
        // The parent waits no longer than a webhook caller would, nor past its own end.
        let mut wait = state.config.sync_deadline;
        if let Some(deadline) = launch.deadline {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        if wait < Duration::from_millis(1) {
            return Err(error(
                GuestErrorKind::Retryable,
                format!(
                    "flow `{flow}` not started: the calling execution has no time left to wait for it"
                ),
            ));
        }
        match queue::run_synchronously(&state, new, &policy, None, wait)
            .await
            .map_err(|err| from_api(flow, err))?
        {
            Accepted::Completed {
                record: Some(record),
                ..
            } => Ok(Launched::Finished(record)),
            Accepted::Completed {
                execution_id,
                tenant_id,
                record: None,
            } => {
                // The child could not run at all; its row says why.
                let reason = state
                    .store
                    .get_execution(&tenant_id, &execution_id)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|execution| execution.error)
                    .unwrap_or_else(|| "it could not start".into());
                Ok(Launched::Failed {
                    error: error(
                        GuestErrorKind::Fatal,
                        format!("flow `{flow}` (execution {execution_id}) failed: {reason}"),
                    ),
                    execution_id,
                })
            }
            Accepted::DeadlinePassed { execution_id } => Ok(Launched::Failed {
                error: error(
                    GuestErrorKind::Retryable,
                    format!(
                        "flow `{flow}` (execution {execution_id}) did not finish within {} ms; \
                         it keeps running (GET /v1/executions/{execution_id})",
                        wait.as_millis()
                    ),
                ),
                execution_id,
            }),
            // A synchronous run answers neither; the caller asked for a result.
            Accepted::Queued { execution_id } | Accepted::Duplicate { execution_id, .. } => {
                Ok(Launched::Failed {
                    error: error(
                        GuestErrorKind::Fatal,
                        format!(
                            "flow `{flow}` (execution {execution_id}) was queued, not run at once"
                        ),
                    ),
                    execution_id,
                })
            }
        }
    }
}
