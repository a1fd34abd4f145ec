//! Executions left `running` (issue 12, item 4), against a real `sluice serve`:
//!
//! - a deploy flow's execution interrupted by SIGKILL ends after the restart instead
//!   of staying `running` forever, and is not run again outside its deploy request;
//! - a deploy flow abandoned while the server is up (its deploy request went away)
//!   is found by the lease sweep and ended;
//! - a live run longer than its lease keeps it (heartbeat): it is not taken for lost.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::holding_sink::HoldingSink;
use support::{Client, Server, deliver, deploy_sink_relay, execution_id_of, webhook_path};

/// How long waiting for something the server should do soon may take before the
/// test gives up (only reached when something is broken).
const PATIENCE: Duration = Duration::from_secs(60);

/// An integration whose deploy flow posts to the sink (and waits for its answer).
const SLOW_SETUP: &str = r#"
definitionVersion: 1
name: Slow setup
components:
  http: {version: 1}
configVars:
  - key: Sink Url
flows:
  - key: setup
    on: instanceDeploy
    steps:
      - key: announce
        action: http.request
        inputs:
          method: POST
          url: {type: configVar, value: Sink Url}
          json: {type: value, value: {hello: true}}
          timeoutMs: 60000
          failOnError: true
"#;

/// Publishes the slow-setup integration and starts deploying it in a task of its
/// own (the deploy request waits for the deploy flow); returns the task once the
/// deploy flow is running, held in its HTTP step.
async fn deploy_in_flight(client: &Client, sink: &HoldingSink) -> tokio::task::JoinHandle<()> {
    client.upload_example("http").await;
    client.publish("slow-setup", SLOW_SETUP).await;
    let customer = client.customer("Slow customer").await;
    let deploying = client.clone();
    let body = json!({
        "customerId": customer,
        "integration": "slow-setup",
        "config": {"Sink Url": format!("{}/", sink.url)},
        "allowedHosts": [sink.url],
    });
    let task = tokio::spawn(async move {
        // Its answer (or the connection's end) does not matter to the tests.
        let _ = deploying
            .http
            .post(format!("{}/v1/instances", deploying.base))
            .bearer_auth(&deploying.key)
            .json(&body)
            .send()
            .await;
    });
    sink.wait_for_hits(1).await;
    task
}

/// The one execution of the deploy flow.
async fn deploy_flow_execution(client: &Client) -> Value {
    let events = client.all_executions("trigger=event").await;
    assert_eq!(events.len(), 1, "{events:?}");
    events[0].clone()
}

/// Polls until execution `id` is no longer queued or running.
async fn ended(client: &Client, id: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let shown = client
            .get(&format!("/v1/executions/{id}"))
            .await
            .expect(200)
            .body;
        if shown["status"] != "running" && shown["status"] != "queued" {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "still {} after {PATIENCE:?}: {shown}",
            shown["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_flow_killed_mid_run_does_not_stay_running() {
    let sink = HoldingSink::start().await;
    let mut server = Server::start_with(&["--crash-backoff-ms", "200"]);
    let mut client = server.tenant("Acme");
    let deploy = deploy_in_flight(&client, &sink).await;
    let running = deploy_flow_execution(&client).await;
    assert_eq!(running["status"], "running", "{running}");
    let id = running["id"].as_str().expect("an id").to_string();

    server.restart();
    deploy.abort();
    client.base = server.url.clone();
    let shown = ended(&client, &id).await;
    // Ended as interrupted: it belongs to a deploy request that is gone, so it is not
    // run again by a worker behind the client's back.
    assert_eq!(shown["status"], "failed", "{shown}");
    assert!(
        shown["error"]
            .as_str()
            .is_some_and(|error| error.starts_with("interrupted:")),
        "{shown}"
    );
    assert_eq!(shown["record"]["error"]["kind"], "interrupted", "{shown}");
    assert!(shown["finishedAt"].is_string(), "{shown}");
    sink.release();
    // Longer than any crash backoff: it did not run again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.hits(), 1, "the deploy flow ran again");
    assert_eq!(
        client.get(&format!("/v1/executions/{id}")).await.body["status"],
        "failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_flow_abandoned_while_the_server_is_up_is_ended_by_the_sweep() {
    let sink = HoldingSink::start().await;
    let server = Server::start_with(&["--execution-lease-ms", "1000"]);
    let client = server.tenant("Acme");
    let deploy = deploy_in_flight(&client, &sink).await;
    let id = deploy_flow_execution(&client).await["id"]
        .as_str()
        .expect("an id")
        .to_string();
    // The client gives up: its connection closes, and the server drops the deploy
    // request's handler with the deploy flow's run inside it. Nothing ends the row.
    deploy.abort();
    let shown = ended(&client, &id).await;
    assert_eq!(shown["status"], "failed", "{shown}");
    assert!(
        shown["error"]
            .as_str()
            .is_some_and(|error| error.starts_with("interrupted:")),
        "{shown}"
    );
    // The server is up and still serves.
    let health = reqwest::get(format!("{}/v1/health", server.url))
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_longer_than_its_lease_keeps_it() {
    let sink = HoldingSink::start().await;
    let server = Server::start_with(&[
        "--execution-lease-ms",
        "1000",
        "--crash-backoff-ms",
        "100",
        "--webhook-rate-limit",
        "0",
    ]);
    let client = server.tenant("Acme");
    let instance = deploy_sink_relay(&client, &sink.url).await;
    let url = format!("{}{}", server.url, webhook_path(&instance, "relay"));
    let reply = deliver(
        &url,
        &[],
        serde_json::to_vec(&json!({"n": 1})).expect("JSON"),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let id = execution_id_of(&reply).expect("an execution id");
    sink.wait_for_hits(1).await;
    // Several leases long, with sweeps in between: the run renews its lease, so the
    // sweep leaves it alone.
    tokio::time::sleep(Duration::from_secs(4)).await;
    sink.release();
    let shown = ended(&client, &id).await;
    assert_eq!(shown["status"], "succeeded", "{shown}");
    assert_eq!(shown["crashRequeues"], 0, "{shown}");
    assert_eq!(shown["attempt"], 1, "{shown}");
    assert_eq!(sink.hits(), 1, "the live run was run again");
}
