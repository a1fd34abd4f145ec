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
    /// Accepted, waiting for a worker.
    Queued,
    /// A worker (or a synchronous caller's task) is running it.
    Running,
    Succeeded,
    Failed,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "queued",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(ExecutionStatus::Queued),
            "running" => Some(ExecutionStatus::Running),
            "succeeded" => Some(ExecutionStatus::Succeeded),
            "failed" => Some(ExecutionStatus::Failed),
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
    pub limit: usize,
}

#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Writes a new execution with its trigger request, atomically (and durably:
    /// when this returns, the execution survives a crash).
    async fn insert_execution(
        &self,
        execution: &Execution,
        payload: &Payload,
    ) -> Result<(), StoreError>;
    /// Takes the oldest queued execution, marking it running until `lease_until_ms`.
    async fn claim_next(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<Execution>, StoreError>;
    /// Marks a (synchronous) execution as running now.
    async fn start_execution(
        &self,
        id: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<(), StoreError>;
    /// Records how an execution ended.
    async fn finish_execution(
        &self,
        id: &str,
        status: ExecutionStatus,
        finished_ms: i64,
        failed_step: Option<&str>,
        error: Option<&str>,
        record: &str,
    ) -> Result<(), StoreError>;
    /// Appends log lines (numbered by the caller, increasing).
    async fn append_logs(&self, id: &str, lines: &[LogLine]) -> Result<(), StoreError>;
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
    /// Executions left `running` by a process that stopped (their lease expired) go
    /// back to the queue; returns how many.
    async fn requeue_expired(&self, now_ms: i64) -> Result<u64, StoreError>;
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
