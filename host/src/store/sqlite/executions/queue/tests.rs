//! The queue's behaviour on a real SQLite file: claiming, turns, retries, FIFO,
//! dedupe, request ids and singletons, leases and crash requeues.

use super::super::test_support::{CRASH, finish, insert, payload, requeued, row, status, store};
use crate::store::executions::{
    EnqueueOutcome, EnqueuePolicy, ExecutionArchive, ExecutionQueue, ExecutionStatus, Finish,
    HOST_CRASH_LOOP, LogLine,
};

#[tokio::test]
async fn claiming_takes_the_oldest_once_and_expired_leases_return() {
    let (_dir, store) = store().await;
    insert(&store, &row("b", ExecutionStatus::Queued, 2), None).await;
    insert(&store, &row("a", ExecutionStatus::Queued, 1), None).await;
    let first = store.claim_next(10, 100).await.unwrap().unwrap();
    assert_eq!(
        (first.id.as_str(), first.status),
        ("a", ExecutionStatus::Running)
    );
    assert_eq!(store.claim_next(10, 100).await.unwrap().unwrap().id, "b");
    assert!(store.claim_next(10, 100).await.unwrap().is_none());
    assert_eq!(requeued(&store, 50).await, 0);
    assert_eq!(requeued(&store, 101).await, 2);
    // Not before its backoff; then with its attempt kept and one crash counted.
    assert!(store.claim_next(1_000, 2_000).await.unwrap().is_none());
    let again = store.claim_next(1_101, 2_000).await.unwrap().unwrap();
    // Both now wait for the same time: the first inserted goes first.
    assert_eq!(
        (again.id.as_str(), again.attempt, again.crash_requeues),
        ("b", 1, 1)
    );
}

#[tokio::test]
async fn tenants_take_turns() {
    let (_dir, store) = store().await;
    for n in 0..6 {
        let mut flood = row(&format!("a{n}"), ExecutionStatus::Queued, n);
        flood.tenant_id = "tenant-a".into();
        insert(&store, &flood, None).await;
    }
    let mut other = row("b0", ExecutionStatus::Queued, 100);
    other.tenant_id = "tenant-b".into();
    insert(&store, &other, None).await;
    let mut order = Vec::new();
    while let Some(claimed) = store.claim_next(1_000, 2_000).await.unwrap() {
        order.push(claimed.id);
    }
    assert_eq!(order.len(), 7);
    let b = order.iter().position(|id| id == "b0").unwrap();
    assert!(b <= 1, "tenant b waited behind a's backlog: {order:?}");
    let a: Vec<_> = order.iter().filter(|id| id.starts_with('a')).collect();
    assert_eq!(
        a,
        ["a0", "a1", "a2", "a3", "a4", "a5"],
        "oldest first within a tenant"
    );
}

#[tokio::test]
async fn retries_wait_for_their_time_and_count_attempts() {
    let (_dir, store) = store().await;
    insert(&store, &row("r", ExecutionStatus::Queued, 1), None).await;
    assert_eq!(store.claim_next(10, 1_000).await.unwrap().unwrap().id, "r");
    store
        .finish_execution("r", &finish(ExecutionStatus::Failed, 20, Some(500)))
        .await
        .unwrap();
    assert!(
        store.claim_next(499, 1_000).await.unwrap().is_none(),
        "not before its time"
    );
    let again = store.claim_next(500, 1_000).await.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.attempt), ("r", 2));
    store
        .finish_execution("r", &finish(ExecutionStatus::Succeeded, 600, None))
        .await
        .unwrap();
    assert_eq!(status(&store, "r").await, ExecutionStatus::Succeeded);
}

#[tokio::test]
async fn fifo_runs_one_at_a_time_in_arrival_order_and_a_retrying_head_blocks() {
    let (_dir, store) = store().await;
    let policy = EnqueuePolicy::default();
    for (n, id) in ["f1", "f2", "f3"].iter().enumerate() {
        let mut execution = row(id, ExecutionStatus::Queued, n as i64);
        execution.fifo = true;
        let outcome = store
            .enqueue_execution(&execution, &payload(), &policy)
            .await
            .unwrap();
        let expected = if n == 0 {
            ExecutionStatus::Queued
        } else {
            ExecutionStatus::Waiting
        };
        assert_eq!(
            outcome,
            EnqueueOutcome::Inserted {
                status: expected,
                cancelled: 0
            }
        );
    }
    assert_eq!(store.claim_next(10, 1_000).await.unwrap().unwrap().id, "f1");
    assert!(
        store.claim_next(10, 1_000).await.unwrap().is_none(),
        "f2 waits for f1"
    );
    // f1 fails and will retry at 100: it stays the head.
    store
        .finish_execution("f1", &finish(ExecutionStatus::Failed, 20, Some(100)))
        .await
        .unwrap();
    assert!(store.claim_next(50, 1_000).await.unwrap().is_none());
    assert_eq!(status(&store, "f2").await, ExecutionStatus::Waiting);
    assert_eq!(
        store.claim_next(100, 1_000).await.unwrap().unwrap().id,
        "f1"
    );
    store
        .finish_execution("f1", &finish(ExecutionStatus::Succeeded, 110, None))
        .await
        .unwrap();
    assert_eq!(
        store.claim_next(120, 1_000).await.unwrap().unwrap().id,
        "f2"
    );
    store
        .finish_execution("f2", &finish(ExecutionStatus::Failed, 130, None))
        .await
        .unwrap();
    assert_eq!(
        store.claim_next(140, 1_000).await.unwrap().unwrap().id,
        "f3"
    );
}

#[tokio::test]
async fn only_an_accepted_execution_holds_its_dedupe_id_within_the_window() {
    let (_dir, store) = store().await;
    let policy = EnqueuePolicy {
        dedupe_since_ms: Some(0),
        singleton: false,
    };
    let fifo = |id: &str, created_ms: i64| {
        let mut execution = row(id, ExecutionStatus::Queued, created_ms);
        execution.fifo = true;
        execution.dedupe_id = Some("delivery-1".into());
        execution
    };
    // A refused request (a forgery with a real id) runs first and holds nothing.
    store
        .enqueue_execution(&fifo("forged", 900), &payload(), &policy)
        .await
        .unwrap();
    assert_eq!(
        store.claim_next(950, 5_000).await.unwrap().unwrap().id,
        "forged"
    );
    let refused = Finish {
        status: ExecutionStatus::Rejected,
        ..finish(ExecutionStatus::Rejected, 960, None)
    };
    store.finish_execution("forged", &refused).await.unwrap();
    // The genuine one is queued, not a duplicate; and not one when its turn comes.
    assert!(matches!(
        store
            .enqueue_execution(&fifo("d1", 1_000), &payload(), &policy)
            .await
            .unwrap(),
        EnqueueOutcome::Inserted { .. }
    ));
    // A repeat while d1 has not run yet: queued behind it, decided at its turn.
    assert_eq!(
        store
            .enqueue_execution(&fifo("d2", 1_010), &payload(), &policy)
            .await
            .unwrap(),
        EnqueueOutcome::Inserted {
            status: ExecutionStatus::Waiting,
            cancelled: 0
        }
    );
    assert_eq!(
        store.claim_next(1_020, 5_000).await.unwrap().unwrap().id,
        "d1"
    );
    assert_eq!(store.drop_if_duplicate("d1", 0, 1_020).await.unwrap(), None);
    let accepted = Finish {
        holds_dedupe: true,
        ..finish(ExecutionStatus::Succeeded, 1_030, None)
    };
    store.finish_execution("d1", &accepted).await.unwrap();
    assert_eq!(
        store.claim_next(1_040, 5_000).await.unwrap().unwrap().id,
        "d2"
    );
    assert_eq!(
        store.drop_if_duplicate("d2", 0, 1_040).await.unwrap(),
        Some("d1".to_string())
    );
    let dropped = store.get_execution("t", "d2").await.unwrap().unwrap();
    assert_eq!(
        (dropped.status, dropped.duplicate_of.as_deref()),
        (ExecutionStatus::Duplicate, Some("d1"))
    );
    // A repeat once d1 holds the id: written as a duplicate at once.
    assert_eq!(
        store
            .enqueue_execution(&fifo("d3", 1_050), &payload(), &policy)
            .await
            .unwrap(),
        EnqueueOutcome::Duplicate {
            existing_id: "d1".into()
        }
    );
    assert_eq!(status(&store, "d3").await, ExecutionStatus::Duplicate);
    // Outside the window (the holder is older than `since`) it runs again.
    let later = EnqueuePolicy {
        dedupe_since_ms: Some(1_001),
        singleton: false,
    };
    assert!(matches!(
        store
            .enqueue_execution(&fifo("d4", 2_000), &payload(), &later)
            .await
            .unwrap(),
        EnqueueOutcome::Inserted { .. }
    ));
}

#[tokio::test]
async fn a_newer_request_id_cancels_pending_retries_and_singletons_skip() {
    let (_dir, store) = store().await;
    let mut old = row("old", ExecutionStatus::Queued, 1);
    old.request_id = Some("req-1".into());
    insert(&store, &old, None).await;
    store.claim_next(10, 1_000).await.unwrap().unwrap();
    store
        .finish_execution("old", &finish(ExecutionStatus::Failed, 20, Some(10_000)))
        .await
        .unwrap();
    let mut newer = row("new", ExecutionStatus::Queued, 30);
    newer.request_id = Some("req-1".into());
    let outcome = store
        .enqueue_execution(&newer, &payload(), &EnqueuePolicy::default())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        EnqueueOutcome::Inserted {
            status: ExecutionStatus::Queued,
            cancelled: 1
        }
    );
    assert_eq!(status(&store, "old").await, ExecutionStatus::Cancelled);

    let singleton = EnqueuePolicy {
        dedupe_since_ms: None,
        singleton: true,
    };
    let outcome = store
        .enqueue_execution(
            &row("s", ExecutionStatus::Queued, 40),
            &payload(),
            &singleton,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        EnqueueOutcome::Inserted {
            status: ExecutionStatus::Skipped,
            cancelled: 0
        }
    );
    let skipped = store.get_execution("t", "s").await.unwrap().unwrap();
    assert!(skipped.finished_ms.is_some() && skipped.error.is_some());
}

#[tokio::test]
async fn finishing_with_logs_numbers_after_earlier_runs_and_promotes_the_fifo_queue() {
    let (_dir, store) = store().await;
    for (n, id) in ["h1", "h2"].iter().enumerate() {
        let mut execution = row(id, ExecutionStatus::Queued, n as i64);
        execution.fifo = true;
        store
            .enqueue_execution(&execution, &payload(), &EnqueuePolicy::default())
            .await
            .unwrap();
    }
    assert_eq!(store.claim_next(10, 1_000).await.unwrap().unwrap().id, "h1");
    let line = |seq: i64, message: &str| LogLine {
        seq,
        ts_ms: 10,
        level: 2,
        step: None,
        message: message.into(),
        fields: None,
    };
    // An earlier run's line, then this run's, numbered from 1 by the caller.
    store.append_logs("h1", &[line(1, "run 1")]).await.unwrap();
    store
        .finish_with_logs(
            "h1",
            &[line(1, "run 2 a"), line(2, "run 2 b")],
            &finish(ExecutionStatus::Succeeded, 20, None),
        )
        .await
        .unwrap();
    let logs = store.execution_logs("t", "h1", 0, 0, 10).await.unwrap();
    let seen: Vec<(i64, &str)> = logs
        .iter()
        .map(|line| (line.seq, line.message.as_str()))
        .collect();
    assert_eq!(seen, [(1, "run 1"), (2, "run 2 a"), (3, "run 2 b")]);
    assert_eq!(status(&store, "h1").await, ExecutionStatus::Succeeded);
    assert_eq!(status(&store, "h2").await, ExecutionStatus::Queued);

    // A retry goes back to the queue with its logs kept.
    assert_eq!(store.claim_next(30, 1_000).await.unwrap().unwrap().id, "h2");
    store
        .finish_with_logs(
            "h2",
            &[line(1, "failed")],
            &finish(ExecutionStatus::Failed, 40, Some(500)),
        )
        .await
        .unwrap();
    let again = store.get_execution("t", "h2").await.unwrap().unwrap();
    assert_eq!((again.status, again.attempt), (ExecutionStatus::Queued, 2));
    assert_eq!(
        store
            .execution_logs("t", "h2", 0, 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_running_insert_carries_its_lease() {
    let (_dir, store) = store().await;
    let mut running = row("s", ExecutionStatus::Running, 1);
    running.started_ms = Some(1);
    insert(&store, &running, Some(100)).await;
    assert_eq!(requeued(&store, 50).await, 0);
    assert_eq!(requeued(&store, 101).await, 1, "the lease expired");
    assert_eq!(status(&store, "s").await, ExecutionStatus::Queued);
}

#[tokio::test]
async fn lost_event_flows_end_interrupted_and_lease_less_rows_are_swept() {
    let (_dir, store) = store().await;
    let mut deploy_flow = row("e", ExecutionStatus::Running, 1);
    deploy_flow.trigger = "event".into();
    insert(&store, &deploy_flow, Some(100)).await;
    // A running row written without a lease (as deploy flows were before leases).
    insert(&store, &row("old", ExecutionStatus::Running, 2), None).await;
    // A live run whose lease has not lapsed is left alone.
    insert(
        &store,
        &row("live", ExecutionStatus::Running, 3),
        Some(1_000),
    )
    .await;
    assert!(store.renew_lease("live", 2_000).await.unwrap());
    let done = store.requeue_expired(1_500, 1_500, &CRASH).await.unwrap();
    assert_eq!(done.interrupted, vec!["e".to_string()]);
    assert_eq!((done.requeued, done.failed.len()), (1, 0));
    let ended = store.get_execution("t", "e").await.unwrap().unwrap();
    assert_eq!(ended.status, ExecutionStatus::Failed);
    assert!(
        ended
            .error
            .as_deref()
            .is_some_and(|error| error.starts_with("interrupted:")),
        "{ended:?}"
    );
    assert_eq!(status(&store, "old").await, ExecutionStatus::Queued);
    assert_eq!(status(&store, "live").await, ExecutionStatus::Running);
    // A lease is renewed only while the row is running.
    assert!(!store.renew_lease("e", 5_000).await.unwrap());
}

#[tokio::test]
async fn crash_requeues_back_off_then_fail_with_host_crash_loop() {
    let (_dir, store) = store().await;
    let mut running = row("p", ExecutionStatus::Running, 1);
    running.started_ms = Some(1);
    insert(&store, &running, Some(100)).await;
    // Three crashes: queued again after 1 s, 4 s, 16 s, the attempt kept.
    let mut now = 1_000;
    for (crashes, backoff) in [(1, 1_000), (2, 4_000), (3, 16_000)] {
        let done = store.requeue_expired(now, i64::MAX, &CRASH).await.unwrap();
        assert_eq!((done.requeued, done.failed.len()), (1, 0));
        let queued = store.get_execution("t", "p").await.unwrap().unwrap();
        assert_eq!(
            (queued.status, queued.attempt, queued.crash_requeues),
            (ExecutionStatus::Queued, 1, crashes)
        );
        assert_eq!(queued.run_after_ms, now + backoff);
        assert!(
            store
                .claim_next(now + backoff - 1, i64::MAX)
                .await
                .unwrap()
                .is_none()
        );
        now += backoff;
        assert_eq!(
            store.claim_next(now, now + 10).await.unwrap().unwrap().id,
            "p"
        );
    }
    // The fourth: failed, not queued.
    let done = store.requeue_expired(now, i64::MAX, &CRASH).await.unwrap();
    assert_eq!((done.requeued, done.failed), (0, vec!["p".to_string()]));
    let failed = store.get_execution("t", "p").await.unwrap().unwrap();
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .is_some_and(|error| error.starts_with("host-crash-loop:")),
        "{failed:?}"
    );
    let record: serde_json::Value =
        serde_json::from_str(&store.execution_record("t", "p").await.unwrap().unwrap()).unwrap();
    assert_eq!(record["error"]["kind"], HOST_CRASH_LOOP);
    assert!(
        store
            .claim_next(i64::MAX - 1, i64::MAX)
            .await
            .unwrap()
            .is_none()
    );
}
