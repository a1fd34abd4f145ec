//! `sluice serve --max-step-runs`: the server validates a published definition
//! against the same cap its engine runs executions with, so a loop that the cap
//! cannot run is refused at publish time, and one it can runs to the end.

mod support;

use serde_json::Value;
use support::{Server, deliver, execution_id_of, webhook_url};

/// A synchronous flow that loops `count` times over one cheap step (no sandbox):
/// `count + 1` step runs.
fn counting(count: u32) -> String {
    format!(
        "definitionVersion: 1\nname: Count\ncomponents:\n  hello: {{version: \"0.1.0\"}}\nflows:\n  - key: f\n    synchronous: true\n    steps:\n      - key: many\n        loopNTimes:\n          count: {count}\n          steps:\n            - key: tick\n              branchOnValue:\n                value: 1\n                branches: [{{name: Two, value: 2, steps: [{{key: two, action: hello.echo}}]}}]\n                else: []\n"
    )
}

async fn publish(client: &support::Client, definition: &str) -> support::Reply {
    client
        .post_bytes(
            "/v1/integrations/count/versions",
            "application/yaml",
            definition.as_bytes().to_vec(),
        )
        .await
}

#[tokio::test]
async fn publish_checks_loops_against_the_servers_step_run_cap() {
    // Default cap: 10,000 step runs; 20,000 iterations cannot run.
    let server = Server::start();
    let client = server.tenant("a");
    client.upload_example("hello").await;
    let reply = publish(&client, &counting(20_000)).await;
    assert!(
        (400..500).contains(&reply.status),
        "{} {}",
        reply.status,
        reply.text
    );
    assert!(
        reply.text.contains("more than the 10000 step runs")
            && reply.text.contains("--max-step-runs"),
        "{}",
        reply.text
    );
    drop(server);

    // Raised to exactly what the loop needs: published, and it runs to the end.
    let server = Server::start_with(&["--max-step-runs", "20001"]);
    let client = server.tenant("a");
    client.upload_example("hello").await;
    let reply = publish(&client, &counting(20_000)).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let customer = client.customer("C").await;
    let instance = client
        .deploy_instance(&customer, "count", Value::Object(Default::default()))
        .await;
    let reply = deliver(
        &webhook_url(&instance, "f"),
        &[("content-type".into(), "application/json".into())],
        b"{}".to_vec(),
    )
    .await;
    let id = execution_id_of(&reply).expect("an execution id");
    let execution = client.finished_execution(&id).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    // One step run more than the cap allows fails at publish time again.
    let reply = publish(&client, &counting(20_001)).await;
    assert!((400..500).contains(&reply.status), "{}", reply.text);
}
