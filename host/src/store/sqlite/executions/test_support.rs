//! Rows, payloads and stores the queue's and the archive's unit tests share, so each
//! test writes only what it is about.

use crate::store::executions::{CrashPolicy, Execution, ExecutionStatus, Finish, Payload};
use crate::store::sqlite::SqliteStore;
use crate::store::{ExecutionArchive, ExecutionQueue};

pub(super) fn row(id: &str, status: ExecutionStatus, created_ms: i64) -> Execution {
    Execution {
        id: id.into(),
        tenant_id: "t".into(),
        instance_id: "i".into(),
        flow_key: "f".into(),
        status,
        synchronous: false,
        attempt: 1,
        created_ms,
        started_ms: None,
        finished_ms: None,
        failed_step: None,
        error: None,
        parent_id: None,
        replay_of: None,
        trigger: "webhook".into(),
        run_after_ms: created_ms,
        fifo: false,
        dedupe_id: None,
        request_id: None,
        crash_requeues: 0,
        duplicate_of: None,
    }
}

pub(super) const CRASH: CrashPolicy = CrashPolicy {
    max_requeues: 3,
    backoff_ms: 1_000,
};

pub(super) fn payload() -> Payload {
    Payload {
        method: "POST".into(),
        path: String::new(),
        query: vec![],
        headers: vec![],
        body: b"{}".to_vec(),
        received_ms: 0,
    }
}

pub(super) fn finish(status: ExecutionStatus, at: i64, retry_at_ms: Option<i64>) -> Finish {
    Finish {
        status,
        finished_ms: at,
        failed_step: None,
        error: None,
        record: "{}".into(),
        retry_at_ms,
        holds_dedupe: false,
    }
}

pub(super) async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
    (dir, store)
}

pub(super) async fn status(store: &SqliteStore, id: &str) -> ExecutionStatus {
    store.get_execution("t", id).await.unwrap().unwrap().status
}

/// Writes `execution` as it is (with `lease_until_ms`), with an empty POST request.
pub(super) async fn insert(
    store: &SqliteStore,
    execution: &Execution,
    lease_until_ms: Option<i64>,
) {
    store
        .insert_execution(execution, &payload(), lease_until_ms)
        .await
        .unwrap();
}

/// How many runs whose lease ended before `at_ms` go back to the queue at `at_ms`.
pub(super) async fn requeued(store: &SqliteStore, at_ms: i64) -> u64 {
    store
        .requeue_expired(at_ms, at_ms, &CRASH)
        .await
        .unwrap()
        .requeued
}
