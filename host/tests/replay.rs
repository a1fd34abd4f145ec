//! Replay against a real `sluice serve`: a failed execution is listed as failed and
//! unreplayed; a replay runs with the stored request and links to the original (a
//! replay of a replay links to the first); once a replay succeeds the original is no
//! longer listed; other tenants cannot replay it, and a removed instance cannot be
//! replayed on.

mod support;

use serde_json::{Value, json};
use support::{Client, Server, deliver};

/// `flaky` fails while the instance's `Mode` config variable is `fail` (the cause a
/// user fixes between runs), and echoes its trigger body otherwise.
const DEFINITION: &str = r#"
definitionVersion: 1
name: Flaky
components:
  hello: {version: 1}
configVars:
  - key: Mode
flows:
  - key: flaky
    steps:
      - key: check
        branchOnValue:
          value: {type: configVar, value: Mode}
          branches:
            - name: Failing
              value: fail
              steps:
                - {key: boom, action: hello.fail, inputs: {kind: fatal, message: the mode is fail}}
      - key: echo
        action: hello.echo
        inputs:
          got: {type: reference, value: trigger.results.body}
"#;

async fn deploy(client: &Client) -> Value {
    client.upload_example("hello").await;
    client.publish("flaky", DEFINITION).await;
    let customer = client.customer("C").await;
    let instance = client
        .deploy_instance(&customer, "flaky", json!({"config": {"Mode": "fail"}}))
        .await;
    assert_eq!(instance["status"], "deployed", "{instance}");
    instance
}

/// The ids of the tenant's failed executions that have no succeeded replay.
async fn unreplayed_failures(client: &Client) -> Vec<String> {
    client
        .get("/v1/executions?status=failed&unreplayed=true")
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().expect("an id").to_string())
        .collect()
}

async fn replay(client: &Client, id: &str) -> Value {
    client
        .post(&format!("/v1/executions/{id}/replay"), &json!({}))
        .await
        .expect(202)
        .body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_link_to_the_original_and_clear_it_once_one_succeeds() {
    let server = Server::start_with(&["--webhook-rate-limit", "0"]);
    let client = server.tenant("Acme");
    let other = server.tenant("Other");
    let instance = deploy(&client).await;
    let instance_id = instance["id"].as_str().unwrap().to_string();
    let url = instance["flows"][0]["webhookUrl"]
        .as_str()
        .unwrap()
        .to_string();

    let reply = deliver(
        &format!("{url}/orders?source=shop"),
        &[("content-type".into(), "application/json".into())],
        br#"{"order": 42}"#.to_vec(),
    )
    .await
    .expect(202);
    let original = reply.body["executionId"].as_str().unwrap().to_string();
    let failed = client.finished_execution(&original).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failedStep"], "boom");
    assert_eq!(failed["trigger"], "webhook");
    assert_eq!(failed["replayOf"], Value::Null);
    assert_eq!(unreplayed_failures(&client).await, vec![original.clone()]);

    // Replayed while the cause is still there: it fails again, and is a replay, so
    // only the original stays listed.
    let replayed = replay(&client, &original).await;
    assert_eq!(replayed["replayOf"], original.as_str());
    let first = replayed["executionId"].as_str().unwrap().to_string();
    assert_ne!(first, original);
    let execution = client.finished_execution(&first).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    assert_eq!(execution["trigger"], "replay");
    assert_eq!(execution["replayOf"], original.as_str());
    assert_eq!(execution["attempt"], 1);
    assert_eq!(unreplayed_failures(&client).await, vec![original.clone()]);

    // The user fixes the cause and replays the replay: it links to the first
    // execution, runs with the same request, and succeeds.
    client
        .patch(
            &format!("/v1/instances/{instance_id}"),
            &json!({"config": {"Mode": "ok"}}),
        )
        .await
        .expect(200);
    let replayed = replay(&client, &first).await;
    assert_eq!(replayed["replayOf"], original.as_str());
    let second = replayed["executionId"].as_str().unwrap().to_string();
    let execution = client.finished_execution(&second).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(execution["replayOf"], original.as_str());
    let echo = execution["record"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["key"] == "echo")
        .unwrap_or_else(|| panic!("no echo step in {execution}"));
    assert_eq!(echo["result"]["value"], json!({"got": {"order": 42}}));
    let payload = |id: String| {
        let client = client.clone();
        async move {
            let mut payload = client
                .get(&format!("/v1/executions/{id}/payload"))
                .await
                .expect(200)
                .body;
            payload["receivedAt"] = Value::Null;
            payload
        }
    };
    let stored = payload(original.clone()).await;
    assert_eq!(stored["path"], "orders");
    assert_eq!(stored["query"], json!([["source", "shop"]]));
    assert_eq!(payload(second.clone()).await, stored);

    // Answered: the original has a succeeded replay.
    assert!(unreplayed_failures(&client).await.is_empty());
    let replays = client
        .get(&format!(
            "/v1/executions?instanceId={instance_id}&trigger=replay"
        ))
        .await
        .expect(200)
        .body;
    assert_eq!(replays["items"].as_array().unwrap().len(), 2, "{replays}");

    // Another tenant neither sees nor replays it.
    let reply = other
        .post(&format!("/v1/executions/{original}/replay"), &json!({}))
        .await
        .expect(404);
    assert_eq!(reply.body["error"]["code"], "not-found");
    client
        .post("/v1/executions/no-such-execution/replay", &json!({}))
        .await
        .expect(404);

    // Disabled, then removed: nothing to replay on, and the message says so.
    client
        .patch(
            &format!("/v1/instances/{instance_id}"),
            &json!({"enabled": false}),
        )
        .await
        .expect(200);
    let reply = client
        .post(&format!("/v1/executions/{original}/replay"), &json!({}))
        .await
        .expect(409);
    assert!(reply.text.contains("is disabled"), "{}", reply.text);
    client
        .delete(&format!("/v1/instances/{instance_id}"))
        .await
        .expect(200);
    let reply = client
        .post(&format!("/v1/executions/{original}/replay"), &json!({}))
        .await
        .expect(409);
    assert!(reply.text.contains("was removed"), "{}", reply.text);
}
