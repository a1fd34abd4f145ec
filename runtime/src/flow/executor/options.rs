//! What the engine and one execution run with: [`EngineOptions`] (the same for every
//! execution: step cap, result caps, result store, retry sleeper, flow launcher) and
//! [`RunEnv`] (one execution's context, capabilities, sandbox limits and deadline).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::flow::launcher::FlowLauncher;
use crate::flow::record::{MemoryResultStore, ResultStore};
use crate::flow::validate::DEFAULT_MAX_STEP_RUNS;
use crate::{Capabilities, ExecutionContext, Limits};

/// Waits between retries. Tests substitute one that records the delays instead.
#[async_trait]
pub trait Sleeper: Send + Sync {
    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);
}

/// Sleeps with tokio.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Settings of the engine, the same for every execution.
#[derive(Clone)]
pub struct EngineOptions {
    /// Most step runs in one execution (every step of every iteration counts);
    /// default [`DEFAULT_MAX_STEP_RUNS`]. Compile plans for this engine with
    /// [`compile_with`](crate::flow::compile_with) and the same number, so that a loop
    /// it cannot run is refused at validation.
    pub max_step_runs: usize,
    /// Results whose JSON is larger are kept in `results` and recorded by reference.
    pub inline_result_bytes: usize,
    /// How much of each step's input the record keeps.
    pub input_preview_bytes: usize,
    /// Keeps the results too large to record inline.
    pub results: Arc<dyn ResultStore>,
    /// Waits between retries.
    pub sleeper: Arc<dyn Sleeper>,
    /// Starts the child executions of `invokeFlow` steps and `invoke-flow` calls;
    /// without one, those fail with an error that says so.
    pub launcher: Option<Arc<dyn FlowLauncher>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_step_runs: DEFAULT_MAX_STEP_RUNS,
            inline_result_bytes: 64 << 10,
            input_preview_bytes: 256,
            results: Arc::new(MemoryResultStore::new()),
            sleeper: Arc::new(TokioSleeper),
            launcher: None,
        }
    }
}

/// What an execution runs with: who it is for, its capabilities (state, connections,
/// config, logs, egress) and the limits of each sandbox.
#[derive(Clone, Default)]
pub struct RunEnv {
    /// Tenant, customer, integration and instance ids, and the execution id (one is
    /// generated when empty). The engine sets `flow_name` (to the flow's key), `step`
    /// and `attempt` itself.
    pub context: ExecutionContext,
    /// What the execution's sandboxes may reach: state, connections, config, logs, egress.
    pub capabilities: Capabilities,
    /// The budgets of each step's sandbox.
    pub limits: Limits,
    /// When the whole execution must have ended (the flow's time limit). Each step's
    /// sandbox gets at most the time left, step retries do not sleep past it, and no
    /// step starts after it: the execution fails with a `time-limit` error.
    pub deadline: Option<Instant>,
}

/// `limits` with the timeout cut to what is left before `deadline` (at least 1 ms, so
/// a step that starts just before the deadline ends as a timeout, not a hang).
pub(crate) fn limits_before(limits: &Limits, deadline: Option<Instant>) -> Limits {
    let mut limits = limits.clone();
    if let Some(deadline) = deadline {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        limits.timeout = limits.timeout.min(left);
    }
    limits
}
