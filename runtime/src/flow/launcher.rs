//! Cross-flow invocation as an embedder sees it: the [`FlowLauncher`] it gives the
//! engine (`EngineOptions::launcher`) to start another flow of the caller's instance,
//! what it is asked ([`FlowLaunch`]) and what it answers ([`Launched`]). How the engine
//! calls it and reads the child's record is `executor::flow_call`.

use std::time::Instant;

use async_trait::async_trait;

use super::record::ExecutionRecord;
use crate::{ExecutionContext, GuestError};

/// One flow call: which flow, with what, for whom.
#[derive(Debug, Clone)]
pub struct FlowLaunch {
    /// The calling execution: its ids name the instance the child belongs to and the
    /// parent the child records.
    pub parent: ExecutionContext,
    /// Key of the flow to run, in the caller's integration (checked to exist).
    pub flow: String,
    /// The child's trigger payload, as JSON text.
    pub payload: String,
    /// Wait for the child's result (`true`), or only queue it.
    pub synchronous: bool,
    /// When the calling execution must end (its time limit), if it has one: a
    /// synchronous call waits no longer than this.
    pub deadline: Option<Instant>,
}

/// What a launcher did with a [`FlowLaunch`].
#[derive(Debug, Clone)]
pub enum Launched {
    /// A synchronous call ran the child to its end; its record (whose `execution_id`
    /// is the child's).
    Finished(Box<ExecutionRecord>),
    /// An asynchronous call queued the child.
    Queued {
        /// The queued child's execution id.
        execution_id: String,
    },
    /// The child exists but gave no result: it could not start, or it was still
    /// running when the caller stopped waiting (a `retryable` error; the child goes
    /// on). The caller's step records the child with the error.
    Failed {
        /// The child's execution id.
        execution_id: String,
        /// Why it gave no result.
        error: GuestError,
    },
}

/// Starts child executions for `invokeFlow` steps and `invoke-flow` calls. The engine
/// knows flows only as plan entries; the embedder owns executions (ids, lineage,
/// queues, deadlines), so it decides how a child runs. An error's kind tells the
/// caller whether retrying can help (`retryable` for a missed deadline).
#[async_trait]
pub trait FlowLauncher: Send + Sync {
    /// Starts the child execution `launch` describes, and waits for it when the call is synchronous.
    async fn launch(&self, launch: FlowLaunch) -> Result<Launched, GuestError>;
}
