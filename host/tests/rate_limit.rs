//! The per-endpoint webhook rate limit against a real `sluice serve`: a flood at one
//! webhook URL gets 202s up to the limit and 429s with a message and `Retry-After`
//! past it, other URLs are unaffected, the URL accepts again after the wait, only
//! accepted deliveries become executions, and `--webhook-rate-limit 0` turns it off.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Client, Reply, Server, deliver, webhook_url};

/// The limit the flood test runs with, per endpoint and second.
const LIMIT: u32 = 20;

/// Uploads `hello`, publishes integration `echoes` (flows `one` and `two`, each one
/// echo step) and deploys `instances` instances of it; returns them.
async fn deploy_echoes(client: &Client, instances: usize) -> Vec<Value> {
    client.upload_example("hello").await;
    let definition = json!({
        "definitionVersion": 1,
        "name": "Echoes",
        "components": {"hello": {"version": 1}},
        "flows": [
            {"key": "one", "steps": [{"key": "e", "action": "hello.echo", "inputs": {"n": 1}}]},
            {"key": "two", "steps": [{"key": "e", "action": "hello.echo", "inputs": {"n": 2}}]},
        ],
    });
    let reply = client
        .post_bytes(
            "/v1/integrations/echoes/versions",
            "application/json",
            serde_json::to_vec(&definition).unwrap(),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let customer = client
        .post("/v1/customers", &json!({"name": "C"}))
        .await
        .expect(201)
        .body;
    let mut deployed = Vec::new();
    for _ in 0..instances {
        let instance = client
            .post(
                "/v1/instances",
                &json!({"customerId": customer["id"], "integration": "echoes"}),
            )
            .await
            .expect(201)
            .body;
        assert_eq!(instance["status"], "deployed", "{instance}");
        deployed.push(instance);
    }
    deployed
}

/// Sends `count` deliveries to `url` all at once; returns the replies.
async fn flood(url: &str, count: usize) -> Vec<Reply> {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..count {
        let url = url.to_string();
        tasks.spawn(async move {
            deliver(
                &url,
                &[("content-type".into(), "application/json".into())],
                serde_json::to_vec(&json!({"n": n})).unwrap(),
            )
            .await
        });
    }
    tasks.join_all().await
}

/// The execution ids of the 202s; panics on any answer but 202 and 429.
fn accepted_ids(replies: &[Reply]) -> Vec<String> {
    replies
        .iter()
        .filter(|reply| {
            assert!(
                reply.status == 202 || reply.status == 429,
                "{}: {}",
                reply.status,
                reply.text
            );
            reply.status == 202
        })
        .map(|reply| {
            reply.body["executionId"]
                .as_str()
                .unwrap_or_else(|| panic!("a 202 without executionId: {}", reply.text))
                .to_string()
        })
        .collect()
}

/// Every execution id of the tenant, all pages.
async fn all_execution_ids(client: &Client) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/executions?limit=100".to_string();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = client.get(&path).await.expect(200).body;
        for item in page["items"].as_array().unwrap() {
            assert!(
                ids.insert(item["id"].as_str().unwrap().to_string()),
                "listed twice: {item}"
            );
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return ids,
        }
    }
}

/// Every accepted delivery is an execution, and nothing else is.
async fn assert_executions_are(client: &Client, accepted: &[String]) {
    for id in accepted {
        client
            .get(&format!("/v1/executions/{id}"))
            .await
            .expect(200);
    }
    let expected: BTreeSet<String> = accepted.iter().cloned().collect();
    assert_eq!(
        expected.len(),
        accepted.len(),
        "an execution id given twice"
    );
    assert_eq!(all_execution_ids(client).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_endpoint_is_refused_past_its_limit_and_others_are_not() {
    let limit = LIMIT.to_string();
    let server = Server::start_with(&["--webhook-rate-limit", &limit]);
    let client = server.tenant("Acme");
    let instances = deploy_echoes(&client, 2).await;
    let flooded = webhook_url(&instances[0], "one");
    let mut accepted = Vec::new();

    // Five times the limit at once. The endpoint starts with a full burst, so the first
    // LIMIT arrivals are accepted however slowly they come; after that, one more per
    // 1/LIMIT s of the flood's duration at most. The flood is measured from the test's
    // side (at least as long as the server's view), so the bound holds on a slow machine.
    let count = 5 * LIMIT as usize;
    let started = Instant::now();
    let replies = flood(&flooded, count).await;
    let elapsed = started.elapsed();
    let flood_ids = accepted_ids(&replies);
    let refill = (elapsed.as_secs_f64() * f64::from(LIMIT)).ceil() as usize;
    assert!(
        flood_ids.len() >= LIMIT as usize,
        "only {} of {count} accepted",
        flood_ids.len()
    );
    assert!(
        flood_ids.len() <= LIMIT as usize + refill,
        "{} of {count} accepted in {elapsed:?}; at most {LIMIT} + {refill} may be",
        flood_ids.len()
    );
    accepted.extend(flood_ids);

    // A refusal says why and when to come back, and names no execution.
    let refused: Vec<&Reply> = replies.iter().filter(|reply| reply.status == 429).collect();
    assert!(
        !refused.is_empty(),
        "no 429 among {count} deliveries in {elapsed:?}"
    );
    let mut retry_after = 1;
    for reply in &refused {
        assert_eq!(
            reply.body["error"]["code"], "rate-limited",
            "{}",
            reply.text
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("at most {LIMIT} requests per second")),
            "{message}"
        );
        let seconds: u64 = reply.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap_or_else(|err| panic!("Retry-After is not whole seconds: {err}"));
        assert!(seconds >= 1, "Retry-After: {seconds}");
        assert!(
            message.contains(&format!("retry after {seconds} s")),
            "{message}"
        );
        assert!(!reply.headers.contains_key("sluice-execution-id"));
        retry_after = retry_after.max(seconds);
    }

    // Other endpoints have budgets of their own: the same instance's other flow, and
    // another instance's copy of the flooded flow, each take a full burst right away.
    for other in [
        webhook_url(&instances[0], "two"),
        webhook_url(&instances[1], "one"),
    ] {
        let replies = flood(&other, LIMIT as usize).await;
        let ids = accepted_ids(&replies);
        assert_eq!(ids.len(), LIMIT as usize, "{other} was limited too");
        accepted.extend(ids);
    }

    // An unknown token is still a 404: the limiter tells nothing about tokens.
    let unknown = format!("{}/webhooks/{}", server.url, "0".repeat(64));
    let reply = deliver(&unknown, &[], b"{}".to_vec()).await.expect(404);
    assert_eq!(reply.body["error"]["code"], "not-found");

    // After the wait the server asked for, the flooded endpoint has its burst again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let replies = flood(&flooded, LIMIT as usize).await;
    let ids = accepted_ids(&replies);
    assert_eq!(
        ids.len(),
        LIMIT as usize,
        "not accepting again after the wait"
    );
    accepted.extend(ids);

    // Everything accepted was stored; nothing refused was.
    assert_executions_are(&client, &accepted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_zero_turns_it_off() {
    let server = Server::start_with(&["--webhook-rate-limit", "0"]);
    let client = server.tenant("Acme");
    let instances = deploy_echoes(&client, 1).await;
    let replies = flood(&webhook_url(&instances[0], "one"), 200).await;
    let accepted = accepted_ids(&replies);
    assert_eq!(accepted.len(), 200);
    assert_executions_are(&client, &accepted).await;
}
