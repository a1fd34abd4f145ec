//! The archive's behaviour on a real SQLite file: retention deletes only old
//! finished executions, and everything kept with them.

use super::super::test_support::{insert, row, store};
use crate::store::executions::{ExecutionArchive, ExecutionStatus, LogLine};
use crate::store::sqlite::sql;

#[tokio::test]
async fn retention_deletes_only_old_finished_executions_with_their_data() {
    let (_dir, store) = store().await;
    insert(
        &store,
        &row("old-done", ExecutionStatus::Succeeded, 1_000),
        None,
    )
    .await;
    insert(
        &store,
        &row("old-queued", ExecutionStatus::Queued, 1_000),
        None,
    )
    .await;
    insert(
        &store,
        &row("new-done", ExecutionStatus::Failed, 5_000),
        None,
    )
    .await;
    let line = LogLine {
        seq: 1,
        ts_ms: 1_000,
        level: 2,
        step: None,
        message: "m".into(),
        fields: None,
    };
    store.append_logs("old-done", &[line]).await.unwrap();
    let reference = store.put_result("old-done", "s", b"[1]").await.unwrap();

    assert_eq!(store.delete_executions_before(2_000).await.unwrap(), 1);
    assert!(
        store
            .get_execution("t", "old-done")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .execution_payload("t", "old-done")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.get_result(None, &reference).await.unwrap().is_none());
    let orphans: i64 = store
        .interact(|c| {
            c.query_row("SELECT count(*) FROM execution_logs", [], |row| row.get(0))
                .map_err(sql)
        })
        .await
        .unwrap();
    assert_eq!(orphans, 0, "logs are deleted with their execution");
    // Queued work is never dropped by retention, nor newer executions.
    assert!(
        store
            .get_execution("t", "old-queued")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get_execution("t", "new-done")
            .await
            .unwrap()
            .is_some()
    );
}
