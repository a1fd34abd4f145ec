//! Cross-flow invocation against a real `sluice serve`: a declarative parent calls a
//! child synchronously (its response comes back) and asynchronously (an id comes
//! back, the child runs later), a code-native flow calls through `invoke-flow`, every
//! child records its parent, unknown flows are refused with a clear message, a child
//! that outlives the synchronous deadline is reported (and keeps running), and a flow
//! that calls itself is stopped at the depth limit.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Client, Server, Sink, deliver, webhook_url};

const DEFINITION: &str = r#"
definitionVersion: 1
name: Calls
components:
  hello: {version: 1}
  hello-flow: {version: 1}
  http: {version: 1}
configVars:
  - key: Sink Url
    defaultValue: http://127.0.0.1:9/
flows:
  - key: parent
    steps:
      - key: child
        invokeFlow:
          flow: child
          payload: {type: complex, value: {n: {type: reference, value: trigger.results.body.n}}}
      - key: done
        stopExecution:
          body: {type: complex, value: {fromChild: {type: reference, value: child.results}}}
  - key: queueChild
    steps:
      - key: queued
        invokeFlow: {flow: child, payload: {type: reference, value: trigger.results.body}, synchronous: false}
  - key: child
    steps:
      - key: echo
        action: hello.echo
        inputs:
          got: {type: reference, value: trigger.results.body}
          parentHeader: {type: reference, value: trigger.results.headers.sluice-parent-execution-id}
  - key: code
    code: {component: hello-flow}
  - key: recurse
    steps:
      - key: again
        invokeFlow: {flow: recurse, synchronous: false}
  - key: pingA
    steps:
      - {key: call, invokeFlow: {flow: pingB}}
  - key: pingB
    steps:
      - {key: call, invokeFlow: {flow: pingA}}
  - key: waitsForSlow
    steps:
      - {key: call, invokeFlow: {flow: slow}}
  - key: slow
    steps:
      - key: post
        action: http.request
        inputs:
          method: POST
          url: {type: configVar, value: Sink Url}
          json: {type: value, value: {slow: true}}
          timeoutMs: 30000
          failOnError: true
"#;

/// Publishes [`DEFINITION`] and deploys an instance of it; returns the instance.
async fn deploy(client: &Client, sink_url: &str) -> Value {
    for name in ["hello", "hello-flow", "http"] {
        client.upload_example(name).await;
    }
    client.publish("calls", DEFINITION).await;
    let customer = client.customer("C").await;
    client
        .deploy_instance(
            &customer,
            "calls",
            json!({
                "config": {"Sink Url": format!("{sink_url}/")},
                "allowedHosts": [sink_url],
            }),
        )
        .await
}

fn json_headers(synchronous: bool) -> Vec<(String, String)> {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if synchronous {
        headers.push(("sluice-synchronous".into(), "true".into()));
    }
    headers
}

fn execution_id(reply: &support::Reply) -> String {
    reply.headers["sluice-execution-id"]
        .to_str()
        .expect("an ASCII execution id")
        .to_string()
}

/// The step `key` of an execution's record.
fn step<'a>(execution: &'a Value, key: &str) -> &'a Value {
    execution["record"]["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["key"] == key))
        .unwrap_or_else(|| panic!("no step {key} in {execution}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_calls_a_child_synchronously_and_asynchronously() {
    let server = Server::start_with(&["--webhook-rate-limit", "0"]);
    let client = server.tenant("Acme");
    let sink = Sink::start(Duration::ZERO).await;
    let instance = deploy(&client, &sink.url).await;

    // Synchronous: the parent's response carries the child's output.
    let reply = deliver(
        &webhook_url(&instance, "parent"),
        &json_headers(true),
        br#"{"n": 7}"#.to_vec(),
    )
    .await
    .expect(200);
    let parent_id = execution_id(&reply);
    assert_eq!(
        reply.body,
        json!({"fromChild": {"got": {"n": 7}, "parentHeader": parent_id}})
    );
    let parent = client.finished_execution(&parent_id).await;
    let call = step(&parent, "child");
    assert_eq!(call["kind"], "invokeFlow");
    assert_eq!(call["flow"], "child");
    let child_id = call["childExecutionId"].as_str().expect("a child id");
    let child = client.finished_execution(child_id).await;
    assert_eq!(child["status"], "succeeded", "{child}");
    assert_eq!(child["parentId"], parent_id.as_str());
    assert_eq!(child["trigger"], "flow");
    assert_eq!(child["flow"], "child");
    assert_eq!(parent["trigger"], "webhook");
    assert_eq!(parent["parentId"], Value::Null);
    // The child's trigger request: a POST of the payload, naming its parent.
    let request = client
        .get(&format!("/v1/executions/{child_id}/payload"))
        .await
        .expect(200)
        .body;
    assert_eq!(request["method"], "POST");
    assert_eq!(request["body"], r#"{"n":7}"#);
    assert!(
        request["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["sluice-parent-execution-id", parent_id])),
        "{request}"
    );

    // Asynchronous: the parent ends with the child's id; the child runs on its own.
    let reply = deliver(
        &webhook_url(&instance, "queueChild"),
        &json_headers(true),
        br#"{"queued": true}"#.to_vec(),
    )
    .await
    .expect(200);
    let parent_id = execution_id(&reply);
    let child_id = reply.body["executionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no child id in {}", reply.text))
        .to_string();
    let child = client.finished_execution(&child_id).await;
    assert_eq!(child["status"], "succeeded", "{child}");
    assert_eq!(child["parentId"], parent_id.as_str());
    assert_eq!(child["trigger"], "flow");
    assert_eq!(child["synchronous"], false);
    assert_eq!(
        step(&child, "echo")["result"]["value"],
        json!({"got": {"queued": true}, "parentHeader": parent_id})
    );
    let parent = client.finished_execution(&parent_id).await;
    assert_eq!(
        step(&parent, "queued")["childExecutionId"],
        child_id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_native_flow_calls_flows_and_unknown_flows_are_refused() {
    let server = Server::start_with(&["--webhook-rate-limit", "0"]);
    let client = server.tenant("Acme");
    let sink = Sink::start(Duration::ZERO).await;
    let instance = deploy(&client, &sink.url).await;
    let code = webhook_url(&instance, "code");

    let body = json!({"invokeFlow": {"flow": "child", "payload": {"from": "code"}}});
    let reply = deliver(&code, &json_headers(true), body.to_string().into_bytes())
        .await
        .expect(200);
    let parent_id = execution_id(&reply);
    assert_eq!(
        reply.body,
        json!({"got": {"from": "code"}, "parentHeader": parent_id})
    );
    let parent = client.finished_execution(&parent_id).await;
    let child_id = step(&parent, "flow:child")["childExecutionId"]
        .as_str()
        .expect("a child id")
        .to_string();
    assert_eq!(
        client.finished_execution(&child_id).await["parentId"],
        parent_id.as_str()
    );

    let body = json!({"invokeFlow": {"flow": "child", "async": true}});
    let reply = deliver(&code, &json_headers(true), body.to_string().into_bytes())
        .await
        .expect(200);
    let child_id = reply.body["executionId"].as_str().expect("a child id");
    let child = client.finished_execution(child_id).await;
    assert_eq!(child["parentId"], execution_id(&reply).as_str());

    // At run time, an unknown flow fails the call with the flows there are.
    let body = json!({"invokeFlow": {"flow": "nope"}});
    let reply = deliver(&code, &[], body.to_string().into_bytes())
        .await
        .expect(202);
    let failed = client.finished_execution(&execution_id(&reply)).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failedStep"], "flow:nope");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("no flow `nope` in integration `Calls` (its flows: parent, queueChild"),
        "{failed}"
    );

    // In a declarative flow, publishing refuses it, with the step's path.
    let bad = DEFINITION.replace("flow: child,", "flow: chidl,");
    let reply = client
        .post_bytes(
            "/v1/integrations/calls/versions",
            "application/yaml",
            bad.into_bytes(),
        )
        .await
        .expect(422);
    let details = reply.body["error"]["details"].to_string();
    assert!(
        details.contains("flows[1].steps[0].invokeFlow.flow")
            && details.contains("unknown flow `chidl`"),
        "{}",
        reply.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_past_the_synchronous_deadline_is_reported_and_keeps_running() {
    let server = Server::start_with(&["--webhook-rate-limit", "0", "--sync-deadline-secs", "1"]);
    let client = server.tenant("Acme");
    // The child's one step takes longer than the parent may wait.
    let sink = Sink::start(Duration::from_secs(3)).await;
    let instance = deploy(&client, &sink.url).await;

    let reply = deliver(&webhook_url(&instance, "waitsForSlow"), &[], b"{}".to_vec())
        .await
        .expect(202);
    let parent = client.finished_execution(&execution_id(&reply)).await;
    assert_eq!(parent["status"], "failed", "{parent}");
    let call = step(&parent, "call");
    assert_eq!(call["error"]["kind"], "retryable");
    let child_id = call["childExecutionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no child id in {call}"));
    let message = call["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "flow `slow` (execution {child_id}) did not finish within"
        )) && message.contains("keeps running"),
        "{message}"
    );
    let child = client.finished_execution(child_id).await;
    assert_eq!(child["status"], "succeeded", "{child}");
    assert_eq!(sink.received(), vec![json!({"slow": true})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursion_is_cut_at_the_depth_limit() {
    let server = Server::start_with(&["--webhook-rate-limit", "0"]);
    let client = server.tenant("Acme");
    let sink = Sink::start(Duration::ZERO).await;
    let instance = deploy(&client, &sink.url).await;
    let instance_id = instance["id"].as_str().unwrap();

    // A flow that queues itself: each run is the next one's parent.
    let reply = deliver(&webhook_url(&instance, "recurse"), &[], b"{}".to_vec())
        .await
        .expect(202);
    let root = execution_id(&reply);
    // Each run queues the next, so the chain is over once one of them failed and
    // none is still to run.
    let filter = format!("instanceId={instance_id}&flow=recurse");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let chain = loop {
        let chain = client.all_executions(&filter).await;
        let ended = |execution: &Value| {
            matches!(execution["status"].as_str(), Some("succeeded" | "failed"))
        };
        if chain
            .iter()
            .any(|execution| execution["status"] == "failed")
            && chain.iter().all(ended)
        {
            break chain;
        }
        assert!(std::time::Instant::now() < deadline, "{chain:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The root and its 8 descendants; the ninth execution's call is refused.
    assert_eq!(chain.len(), 9, "{chain:#?}");
    let mut current = chain
        .iter()
        .find(|execution| execution["id"] == root.as_str())
        .expect("the root")
        .clone();
    for depth in 0..9 {
        let child = chain
            .iter()
            .find(|execution| execution["parentId"] == current["id"]);
        if depth < 8 {
            assert_eq!(current["status"], "succeeded", "{current}");
            let child = child.unwrap_or_else(|| panic!("no child of {current}"));
            assert_eq!(child["trigger"], "flow");
            current = child.clone();
        } else {
            assert!(child.is_none());
            assert_eq!(current["status"], "failed", "{current}");
            let error = current["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("already has 8 ancestor executions")
                    && error.contains("nest at most 8 deep"),
                "{error}"
            );
        }
    }

    // Synchronous mutual recursion stops at the same depth, and every level fails
    // with the error of the level below it.
    let reply = deliver(&webhook_url(&instance, "pingA"), &[], b"{}".to_vec())
        .await
        .expect(202);
    let top = client.finished_execution(&execution_id(&reply)).await;
    assert_eq!(top["status"], "failed", "{top}");
    let error = top["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("fatal: flow `pingB` (execution ")
            && error.contains("nest at most 8 deep"),
        "{error}"
    );
    let pings = client
        .all_executions(&format!("instanceId={instance_id}&trigger=flow"))
        .await
        .into_iter()
        .filter(|execution| execution["flow"] != "recurse")
        .count();
    assert_eq!(pings, 8, "the top execution and 8 descendants");
}
