//! Storage of executions: the row written before a webhook is answered (the durable
//! queue is this table), the stored trigger request, the record written when the
//! execution ends, its log lines, and retention.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// Where an execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionStatus {
    /// Accepted, waiting for a worker (or for its retry time).
    Queued,
    /// In a FIFO queue behind the execution at its head.
    Waiting,
    /// A worker (or a synchronous caller's task) is running it.
    Running,
    Succeeded,
    Failed,
    /// Not run: a singleton flow's earlier execution was still unfinished.
    Skipped,
    /// Not run (or not retried): its instance was removed, or a newer request with
    /// the same request id replaced it.
    Cancelled,
    /// The flow's trigger refused the request (answered it with an error status, a
    /// bad signature for one): the flow did not run.
    Rejected,
    /// Not run: a repeat of a FIFO dedupe id that another execution of the flow holds
    /// within the window (`duplicate_of`). Replayable like any ended execution.
    Duplicate,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "queued",
            ExecutionStatus::Waiting => "waiting",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Skipped => "skipped",
            ExecutionStatus::Cancelled => "cancelled",
            ExecutionStatus::Rejected => "rejected",
            ExecutionStatus::Duplicate => "duplicate",
        }
    }

    /// Whether the execution has ended (it will not run, or run again).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ExecutionStatus::Succeeded
                | ExecutionStatus::Failed
                | ExecutionStatus::Skipped
                | ExecutionStatus::Cancelled
                | ExecutionStatus::Rejected
                | ExecutionStatus::Duplicate
        )
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(ExecutionStatus::Queued),
            "waiting" => Some(ExecutionStatus::Waiting),
            "running" => Some(ExecutionStatus::Running),
            "succeeded" => Some(ExecutionStatus::Succeeded),
            "failed" => Some(ExecutionStatus::Failed),
            "skipped" => Some(ExecutionStatus::Skipped),
            "cancelled" => Some(ExecutionStatus::Cancelled),
            "rejected" => Some(ExecutionStatus::Rejected),
            "duplicate" => Some(ExecutionStatus::Duplicate),
            _ => None,
        }
    }
}

/// An execution row (without its record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub id: String,
    pub tenant_id: String,
    pub instance_id: String,
    pub flow_key: String,
    pub status: ExecutionStatus,
    pub synchronous: bool,
    pub attempt: i64,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub failed_step: Option<String>,
    pub error: Option<String>,
    pub parent_id: Option<String>,
    pub replay_of: Option<String>,
    /// What started it: `webhook`, `schedule`, `replay`, `flow` or `event`.
    pub trigger: String,
    /// A queued execution is not claimed before this (a retry waits here).
    pub run_after_ms: i64,
    /// In its (instance, flow) FIFO queue.
    pub fifo: bool,
    /// The FIFO dedupe id read from the request. The execution holds it (a later
    /// request with the same id is a duplicate) only once its trigger accepted it.
    pub dedupe_id: Option<String>,
    /// The unique request id read from the request (retry cancellation).
    pub request_id: Option<String>,
    /// Times it was queued again because the process running it stopped (crashed,
    /// killed) before it ended. Counted apart from `attempt`, which only the flow's
    /// retry policy raises.
    pub crash_requeues: i64,
    /// A `duplicate`: the execution holding its dedupe id.
    pub duplicate_of: Option<String>,
}

/// What happens to executions a stopped process left running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPolicy {
    /// Crash requeues an execution may have; one more crash fails it with
    /// [`HOST_CRASH_LOOP`].
    pub max_requeues: i64,
    /// The wait before the first crash requeue runs; each further one waits four
    /// times longer than the one before.
    pub backoff_ms: i64,
}

/// The error code of an execution failed because the host kept stopping while it ran.
pub const HOST_CRASH_LOOP: &str = "host-crash-loop";

/// The error code of an instance event flow (deploy, remove) whose run was lost:
/// it runs only within its deploy or remove request, so it is not run again.
pub const INTERRUPTED: &str = "interrupted";

/// What [`ExecutionQueue::requeue_expired`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requeued {
    /// Executions queued again, each after its backoff.
    pub requeued: u64,
    /// Executions failed with [`HOST_CRASH_LOOP`] (their ids).
    pub failed: Vec<String>,
    /// Instance event flows failed with [`INTERRUPTED`] (their ids).
    pub interrupted: Vec<String>,
}

/// The queue policies applied when an execution is enqueued, atomically with the
/// insert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnqueuePolicy {
    /// With a dedupe id: an execution of the same instance and flow created at or
    /// after this time that holds the same id makes the new one a duplicate.
    pub dedupe_since_ms: Option<i64>,
    /// Record as `skipped` while an execution of the same instance and flow is
    /// unfinished.
    pub singleton: bool,
}

/// What enqueueing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// Written, with this status (`queued`, `waiting` behind a FIFO head, `skipped`).
    /// `cancelled` counts the pending retries of the same request id it cancelled.
    Inserted {
        status: ExecutionStatus,
        cancelled: u64,
    },
    /// Written as `duplicate` of `existing_id`, which holds the same dedupe id: not
    /// queued.
    Duplicate { existing_id: String },
}

/// How a run of an execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// `succeeded` or `failed` (or `cancelled`).
    pub status: ExecutionStatus,
    pub finished_ms: i64,
    pub failed_step: Option<String>,
    pub error: Option<String>,
    /// The execution record (JSON).
    pub record: String,
    /// Run again at this time, as the next attempt, instead of ending.
    pub retry_at_ms: Option<i64>,
    /// The trigger accepted the request: from now on the execution holds its dedupe
    /// id (if it has one).
    pub holds_dedupe: bool,
}

/// The trigger request an execution was created from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub received_ms: i64,
}

impl Payload {
    /// A JSON `POST` the host makes itself (a schedule, an instance event, another
    /// flow), marked by one header saying where it came from.
    pub fn host_json(header: (&str, &str), body: Vec<u8>, received_ms: i64) -> Payload {
        Payload {
            method: "POST".into(),
            path: String::new(),
            query: Vec::new(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                (header.0.into(), header.1.into()),
            ],
            body,
            received_ms,
        }
    }
}

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub seq: i64,
    pub ts_ms: i64,
    /// 0 trace ... 4 error.
    pub level: i64,
    pub step: Option<String>,
    pub message: String,
    pub fields: Option<String>,
}

/// Which executions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    pub instance_id: Option<String>,
    pub flow_key: Option<String>,
    pub status: Option<ExecutionStatus>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Continue after this (created_ms, id) position, newest first.
    pub before: Option<(i64, String)>,
    /// Only executions that are not replays and have no succeeded replay.
    pub unreplayed: bool,
    /// Only executions started this way (`webhook`, `schedule`, ...).
    pub trigger: Option<String>,
    pub limit: usize,
}

/// The durable queue: executions written, claimed under a lease, finished or queued
/// again for a retry, and taken back from runs that are gone.
#[async_trait]
pub trait ExecutionQueue: Send + Sync {
    /// Writes a new execution with its trigger request, atomically (and durably:
    /// when this returns, the execution survives a crash). A row written as running
    /// gets its lease (`lease_until_ms`) in the same write, so a caller that runs it
    /// at once needs no [`start_execution`](Self::start_execution).
    async fn insert_execution(
        &self,
        execution: &Execution,
        payload: &Payload,
        lease_until_ms: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Writes a new queued execution, applying `policy` and the execution's FIFO,
    /// dedupe and request-id settings in the same transaction.
    async fn enqueue_execution(
        &self,
        execution: &Execution,
        payload: &Payload,
        policy: &EnqueuePolicy,
    ) -> Result<EnqueueOutcome, StoreError>;
    /// Takes a ready queued execution (its `run_after_ms` passed), marking it running
    /// until `lease_until_ms`. Tenants take turns, so one tenant's backlog cannot
    /// starve the others; within a tenant, the oldest goes first.
    async fn claim_next(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<Execution>, StoreError>;
    /// At the start of a run of an execution with a dedupe id: when another
    /// execution of its instance and flow created at or after `dedupe_since_ms` holds
    /// that id, ends this one as `duplicate` of it (at `now_ms`) and returns its id.
    /// A FIFO queue runs one execution at a time, so the holder's trigger has decided
    /// by now.
    async fn drop_if_duplicate(
        &self,
        id: &str,
        dedupe_since_ms: i64,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError>;
    /// Extends the lease of a running execution (its run is alive); false when the
    /// execution is no longer running.
    async fn renew_lease(&self, id: &str, lease_until_ms: i64) -> Result<bool, StoreError>;
    /// Marks a (synchronous) execution as running now.
    async fn start_execution(
        &self,
        id: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<(), StoreError>;
    /// Records how a run ended: the execution ends, or is queued again for a retry.
    /// When a FIFO execution ends, the next one of its queue becomes its head.
    async fn finish_execution(&self, id: &str, finish: &Finish) -> Result<(), StoreError>;
    /// [`append_logs`](ExecutionArchive::append_logs) then
    /// [`finish_execution`](Self::finish_execution), in one transaction: how every run
    /// ends, so it costs one write to the store rather than two.
    async fn finish_with_logs(
        &self,
        id: &str,
        lines: &[LogLine],
        finish: &Finish,
    ) -> Result<(), StoreError>;
    /// Executions left `running` by a run that is gone (the process stopped, or the
    /// run was dropped: its lease ended before `expired_before_ms`, or it has none) go
    /// back to the queue with one more crash requeue, not before `now_ms` plus their
    /// backoff; those that already had `policy.max_requeues` fail with
    /// [`HOST_CRASH_LOOP`] instead (their flow's retry policy is not applied).
    /// Instance event flows (trigger `event`) fail with [`INTERRUPTED`]: they belong
    /// to a deploy or remove request that is gone.
    async fn requeue_expired(
        &self,
        now_ms: i64,
        expired_before_ms: i64,
        policy: &CrashPolicy,
    ) -> Result<Requeued, StoreError>;
}

/// What is kept of executions: the rows as stored and their listing, records, logs,
/// trigger requests and large results, until retention deletes them.
#[async_trait]
pub trait ExecutionArchive: Send + Sync {
    async fn get_execution(&self, tenant: &str, id: &str) -> Result<Option<Execution>, StoreError>;
    /// The record of a finished execution (JSON).
    async fn execution_record(&self, tenant: &str, id: &str) -> Result<Option<String>, StoreError>;
    /// Newest first.
    async fn list_executions(
        &self,
        tenant: &str,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>, StoreError>;
    /// Log lines after `after_seq` at or above `min_level`, at most `limit`.
    async fn execution_logs(
        &self,
        tenant: &str,
        id: &str,
        min_level: i64,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<LogLine>, StoreError>;
    async fn execution_payload(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Payload>, StoreError>;
    /// Appends log lines, after those a previous run of the execution wrote (the
    /// caller numbers its lines from 1).
    async fn append_logs(&self, id: &str, lines: &[LogLine]) -> Result<(), StoreError>;
    /// Deletes finished executions created before `cutoff_ms` (with logs and
    /// payloads); returns how many.
    async fn delete_executions_before(&self, cutoff_ms: i64) -> Result<u64, StoreError>;
    /// Keeps a large step result; returns its reference.
    async fn put_result(
        &self,
        execution_id: &str,
        step: &str,
        data: &[u8],
    ) -> Result<String, StoreError>;
    /// A large step result by reference; with a tenant, only if that tenant owns its
    /// execution (the engine itself reads without one).
    async fn get_result(
        &self,
        tenant: Option<&str>,
        reference: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Executions, queued and kept: the store's resource trait for them.
pub trait ExecutionStore: ExecutionQueue + ExecutionArchive {}

impl<T: ExecutionQueue + ExecutionArchive> ExecutionStore for T {}
