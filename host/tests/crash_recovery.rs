//! Delivery guarantees across a crash: a real `sluice serve` takes 2,000 asynchronous
//! webhooks, is killed with SIGKILL halfway, restarts on the same data, and every
//! accepted execution still completes; the duplicates a loopback sink saw are counted.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Client, Server, Sink, deploy_sink_relay, execution_id_of, try_deliver, webhook_path,
};
use tokio::sync::Notify;

const WEBHOOKS: usize = 2_000;
/// Requests the test keeps in flight, like a sender with a bounded connection pool.
const IN_FLIGHT: usize = 32;
/// How long the sink holds each answer: long enough that executions are mid-flow when
/// the server dies.
const SINK_DELAY: Duration = Duration::from_millis(40);
/// A bound on waiting for the queue to drain, only reached when something is broken.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);

/// What sending a range of webhooks produced.
#[derive(Default)]
struct Sent {
    /// n → the execution id of its 202.
    accepted: BTreeMap<u64, String>,
    /// Requests that got no answer (the server was gone): not accepted.
    unanswered: BTreeSet<u64>,
    /// Answers other than 202: with the rate limit off, none are expected.
    refused: Vec<(u64, u16, String)>,
}

/// Sends `{"n": n}` for every n of `numbers` with at most `IN_FLIGHT` requests at once.
/// `half` is notified once `notify_at` deliveries have been accepted.
async fn send(url: String, numbers: Vec<u64>, notify_at: usize, half: Arc<Notify>) -> Sent {
    let http = reqwest::Client::new();
    let numbers = Arc::new(numbers);
    let next = Arc::new(AtomicUsize::new(0));
    let accepted_count = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let mut senders = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (http, url, numbers, next, accepted_count, sent, half) = (
            http.clone(),
            url.clone(),
            Arc::clone(&numbers),
            Arc::clone(&next),
            Arc::clone(&accepted_count),
            Arc::clone(&sent),
            Arc::clone(&half),
        );
        senders.push(tokio::spawn(async move {
            while let Some(&n) = numbers.get(next.fetch_add(1, Ordering::SeqCst)) {
                let body = serde_json::to_vec(&json!({"n": n})).expect("JSON");
                match try_deliver(&http, &url, body).await {
                    Ok(reply) if reply.status == 202 => {
                        let id = execution_id_of(&reply)
                            .unwrap_or_else(|| panic!("a 202 without an execution id: {reply:?}"));
                        sent.lock().expect("lock").accepted.insert(n, id);
                        if accepted_count.fetch_add(1, Ordering::SeqCst) + 1 == notify_at {
                            half.notify_one();
                        }
                    }
                    Ok(reply) => {
                        sent.lock()
                            .expect("lock")
                            .refused
                            .push((n, reply.status, reply.text))
                    }
                    Err(_) => {
                        sent.lock().expect("lock").unanswered.insert(n);
                    }
                }
            }
        }));
    }
    for sender in senders {
        sender.await.expect("a sender task");
    }
    std::mem::take(&mut *sent.lock().expect("lock"))
}

/// The deliveries the sink saw: execution id → the n values it posted, one per
/// delivery (an execution that ran twice past its HTTP step appears twice).
fn deliveries_by_execution(received: &[Value]) -> HashMap<String, Vec<u64>> {
    let mut by_execution: HashMap<String, Vec<u64>> = HashMap::new();
    for body in received {
        let id = body["executionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a sink delivery without an execution id: {body}"));
        let n = body["n"]
            .as_u64()
            .unwrap_or_else(|| panic!("a sink delivery without n: {body}"));
        by_execution.entry(id.to_string()).or_default().push(n);
    }
    by_execution
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_flood_completes_every_accepted_execution() {
    let sink = Sink::start(SINK_DELAY).await;
    let mut server = Server::start_with(&["--webhook-rate-limit", "0"]);
    let mut client: Client = server.tenant("Acme");
    let instance = deploy_sink_relay(&client, &sink.url).await;
    let instance_id = instance["id"].as_str().expect("an instance id").to_string();
    let path = webhook_path(&instance, "relay");

    // Flood, and kill -9 the server once half the deliveries have been accepted.
    let half = Arc::new(Notify::new());
    let flood = tokio::spawn(send(
        format!("{}{path}", server.url),
        (0..WEBHOOKS as u64).collect(),
        WEBHOOKS / 2,
        Arc::clone(&half),
    ));
    tokio::time::timeout(DRAIN_TIMEOUT, half.notified())
        .await
        .expect("half of the deliveries accepted");
    server.kill();
    let before = flood.await.expect("the flood task");
    assert!(
        before.refused.is_empty(),
        "answers other than 202 before the kill: {:?}",
        &before.refused[..before.refused.len().min(5)]
    );
    let before_restart = sink.received().len();

    // Restart on the same data; resend what got no 202, as a real sender would.
    server.restart();
    client.base = server.url.clone();
    let resend: Vec<u64> = before.unanswered.iter().copied().collect();
    let after = send(
        format!("{}{path}", server.url),
        resend.clone(),
        usize::MAX,
        Arc::new(Notify::new()),
    )
    .await;
    assert!(
        after.refused.is_empty() && after.unanswered.is_empty(),
        "resending after the restart: refused {:?}, unanswered {:?}",
        after.refused,
        after.unanswered
    );
    let mut accepted = before.accepted.clone();
    accepted.extend(after.accepted.clone());
    assert_eq!(accepted.len(), WEBHOOKS, "every n is accepted once resent");

    client.wait_until_idle(DRAIN_TIMEOUT).await;
    let executions: HashMap<String, Value> = client
        .all_executions(&format!("instanceId={instance_id}"))
        .await
        .into_iter()
        .map(|execution| {
            let id = execution["id"].as_str().expect("an id").to_string();
            (id, execution)
        })
        .collect();

    // Every accepted execution exists and succeeded: nothing accepted was lost.
    for (n, id) in &accepted {
        let execution = executions
            .get(id)
            .unwrap_or_else(|| panic!("accepted execution {id} (n = {n}) is gone"));
        assert_eq!(execution["status"], "succeeded", "n = {n}: {execution}");
    }
    // Runs of an execution: its flow attempt plus the crash requeues (a re-run after
    // the kill counts as a crash requeue, not as an attempt).
    let attempts = |id: &str| {
        executions[id]["attempt"].as_i64().unwrap_or(0)
            + executions[id]["crashRequeues"].as_i64().unwrap_or(0)
    };
    let rerun: BTreeSet<&String> = executions
        .keys()
        .filter(|id| attempts(id.as_str()) > 1)
        .collect();
    // The kill came while executions were mid-flow (the sink holds every answer), so
    // some ran again; none would mean the crash missed what this test is about.
    assert!(
        !rerun.is_empty(),
        "no execution ran a second attempt after the kill"
    );
    let shown = client
        .get(&format!(
            "/v1/executions/{}",
            rerun.iter().next().expect("one")
        ))
        .await
        .expect(200)
        .body;
    assert!(
        shown["attempt"] == 1
            && shown["crashRequeues"].as_i64().unwrap_or(0) > 0
            && shown["status"] == "succeeded",
        "{shown}"
    );

    // The sink: every accepted (n, execution) arrived at least once.
    let received = sink.received();
    let by_execution = deliveries_by_execution(&received);
    let lost: Vec<u64> = accepted
        .iter()
        .filter(|(n, id)| !by_execution.get(*id).is_some_and(|ns| ns.contains(n)))
        .map(|(n, _)| *n)
        .collect();
    assert!(lost.is_empty(), "accepted but never delivered: {lost:?}");

    // Duplicates of one execution: it ran past its HTTP step, the crash lost its end,
    // and it ran again. Each must be an execution the server counts as a re-run.
    let mut rerun_duplicates = BTreeSet::new();
    for (id, ns) in &by_execution {
        let execution = executions
            .get(id)
            .unwrap_or_else(|| panic!("the sink saw execution {id}, which the API does not know"));
        assert_eq!(execution["status"], "succeeded", "{execution}");
        assert!(
            ns.iter().all(|n| *n == ns[0]),
            "execution {id} posted different numbers: {ns:?}"
        );
        if ns.len() > 1 {
            assert!(
                attempts(id) > 1,
                "execution {id} reached the sink {} times on attempt {}",
                ns.len(),
                attempts(id)
            );
            rerun_duplicates.insert(ns[0]);
        }
    }
    assert!(rerun_duplicates.len() <= rerun.len());

    // Duplicates of one n across executions: the server stored a delivery but died
    // before its 202 left, and the sender resent it. Only requests in flight at the
    // kill can be in that state.
    let accepted_ids: BTreeSet<&String> = accepted.values().collect();
    let orphans: Vec<(&String, u64)> = by_execution
        .iter()
        .filter(|(id, _)| !accepted_ids.contains(id))
        .map(|(id, ns)| (id, ns[0]))
        .collect();
    for (id, n) in &orphans {
        assert!(
            before.unanswered.contains(n),
            "execution {id} for n = {n}, never answered, yet n was accepted before the kill"
        );
    }
    assert!(
        orphans.len() <= IN_FLIGHT,
        "{} executions stored without an answer, more than the {IN_FLIGHT} requests in flight",
        orphans.len()
    );
    assert_eq!(
        executions.len(),
        accepted.len() + orphans.len(),
        "executions other than the accepted and the orphaned"
    );

    let mut per_n: BTreeMap<u64, usize> = BTreeMap::new();
    for body in &received {
        *per_n
            .entry(body["n"].as_u64().unwrap_or(u64::MAX))
            .or_default() += 1;
    }
    let duplicates = per_n.values().filter(|count| **count > 1).count();
    assert!(
        duplicates <= rerun_duplicates.len() + orphans.len(),
        "{duplicates} numbers delivered more than once, {} explained by re-runs and {} by resends",
        rerun_duplicates.len(),
        orphans.len()
    );
    println!(
        "crash recovery: sent {WEBHOOKS}, accepted before kill {}, resent {}, accepted {}, \
         lost 0, duplicates {duplicates} (re-run {}, resent after a lost 202 {}), \
         executions re-run after the crash: {}, sink deliveries {} ({before_restart} before the restart)",
        before.accepted.len(),
        resend.len(),
        accepted.len(),
        rerun_duplicates.len(),
        orphans.len(),
        rerun.len(),
        received.len(),
    );
}
