//! Inline JavaScript code steps on `sluice serve --code-engine`: a syntax error is
//! refused at publish time with the step's path, a published code step runs on a
//! synchronous webhook and answers with its result, and a server without the engine
//! refuses code steps with the flag to set.

mod support;

use serde_json::{Value, json};
use support::{Server, deliver, webhook_url};

fn definition(code: &str) -> String {
    let code: String = code.lines().map(|line| format!("          {line}\n")).collect();
    format!(
        "definitionVersion: 1\nname: Shape\nflows:\n  - key: shape\n    synchronous: true\n    steps:\n      - key: shape\n        code: |\n{code}"
    )
}

async fn publish(client: &support::Client, definition: &str) -> support::Reply {
    client
        .post_bytes(
            "/v1/integrations/shape/versions",
            "application/yaml",
            definition.as_bytes().to_vec(),
        )
        .await
}

fn engine() -> String {
    sluice_runtime::guest_build::code_engine::code_engine()
        .unwrap_or_else(|err| panic!("{err}"))
        .display()
        .to_string()
}

#[tokio::test]
async fn a_code_step_is_checked_at_publish_and_answers_a_webhook() {
    let engine = engine();
    let server = Server::start_with(&["--code-engine", &engine]);
    let client = server.tenant("a");

    let reply = publish(&client, &definition("(context) => {\n  return context.;\n}")).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    let body: Value = serde_json::from_str(&reply.text).unwrap();
    let details = &body["error"]["details"];
    assert_eq!(details[0]["path"], "flows[0].steps[0].code", "{body}");
    assert!(
        details[0]["message"]
            .as_str()
            .unwrap()
            .contains("syntax error in the code step (line 2"),
        "{body}"
    );

    let code = "async (context, stepResults) => ({\n  data: {\n    title: stepResults.trigger.results.body.title.toUpperCase(),\n    customer: context.customer.externalId,\n  },\n  statusCode: 202,\n})";
    let reply = publish(&client, &definition(code)).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let customer = client.customer("Acme").await;
    let instance = client
        .deploy_instance(&customer, "shape", Value::Object(Default::default()))
        .await;
    let reply = deliver(
        &webhook_url(&instance, "shape"),
        &[("content-type".into(), "application/json".into())],
        br#"{"title": "gh-13"}"#.to_vec(),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let answer: Value = serde_json::from_str(&reply.text).unwrap();
    assert_eq!(answer["title"], json!("GH-13"), "{answer}");
}

#[tokio::test]
async fn without_the_engine_a_code_step_is_refused_with_the_flag_to_set() {
    let server = Server::start();
    let client = server.tenant("a");
    let reply = publish(&client, &definition("() => 1")).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(reply.text.contains("--code-engine"), "{}", reply.text);
}

#[test]
fn a_file_that_is_not_the_engine_stops_the_server_with_the_reason() {
    let hello = sluice_runtime::guest_build::example("hello").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .arg("--code-engine")
        .arg(&hello)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not the code engine") && stderr.contains("hello"),
        "{stderr}"
    );
}
