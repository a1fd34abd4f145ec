//! The Python SDK end to end: `examples/sdk-demo-py` (a connector using state with
//! compare-and-swap, connections, config, the execution context, logging and print,
//! the HTTP client against a fake API, a signed webhook trigger with branches, instance
//! hooks, a data source, shaped outputs and each error kind) and `examples/flow-py` (a
//! code-native flow that invokes a component and another flow), through the harness.
//!
//! The SDK's native unit tests (guest-sdk/python/tests) run here too, in the build's venv.
//!
//! Compiling a Python component takes tens of seconds in a test build, so each test
//! loads its component once and runs every check on that harness.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;

use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_runtime::guest_build::example;
use sluice_runtime::guest_build::python::{python_example, sdk_dir, venv_python};
use sluice_runtime::harness::{Harness, Run, Scope};
use sluice_runtime::{Connection, Data, GuestErrorKind, HttpRequest, TriggerOutcome};

/// Serves one canned response on loopback and sends the request it read back.
fn fake_api(status: u16, body: &'static str) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (sent, received) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if request.len() >= end + 4 + length || n == 0 {
                    break;
                }
            }
        }
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).unwrap();
        sent.send(String::from_utf8_lossy(&request).into_owned())
            .unwrap();
    });
    (url, received)
}

/// HMAC-SHA256 (RFC 2104) in GitHub's `sha256=<hex>` form, computed independently of
/// the SDK under test.
fn sign_github(secret: &[u8], body: &[u8]) -> String {
    let mut key = [0u8; 64];
    key[..secret.len()].copy_from_slice(secret);
    let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(body)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    format!("sha256={}", hex::encode(outer))
}

fn kind(run: &Run) -> GuestErrorKind {
    run.guest_error().unwrap_or_else(|err| panic!("{err}")).kind
}

#[tokio::test]
async fn the_python_sdk_reaches_every_host_interface() {
    let wasm = python_example("sdk-demo-py").unwrap();
    let (api, requests) = fake_api(201, r#"{"id": 42}"#);
    let (refusing, _) = fake_api(401, r#"{"error": "bad key"}"#);
    let (overloaded, _) = fake_api(503, r#"{"error": "busy"}"#);
    let (missing, _) = fake_api(404, r#"{"error": "no such ticket"}"#);
    let harness = Harness::from_file(&wasm)
        .unwrap()
        .with_config("region", json!("eu"))
        .with_config("webhookSecret", json!("s3cret"))
        .with_connection(Connection {
            key: "acme".into(),
            kind: "api-key".into(),
            fields: json!({"apiKey": "k-1", "baseUrl": api}),
            token: None,
        })
        .allow_host(&api)
        .unwrap()
        .allow_host(&refusing)
        .unwrap()
        .allow_host(&overloaded)
        .unwrap()
        .allow_host(&missing)
        .unwrap();

    // The manifest: derived inputs, connection type, branches, hooks, data source.
    let manifest = harness.manifest().await.unwrap();
    let create = &manifest["actions"]["createTicket"]["inputs"];
    assert_eq!(create["required"], json!(["subject"]));
    assert_eq!(
        create["properties"]["priority"],
        json!({"enum": ["low", "normal", "urgent"], "default": "normal"})
    );
    assert_eq!(manifest["connections"][0]["key"], "acme");
    assert_eq!(
        manifest["connections"][0]["inputs"]["required"],
        json!(["apiKey"])
    );
    assert_eq!(
        manifest["actions"]["shaped"]["staticBranchNames"],
        json!(["found", "missing"])
    );
    assert_eq!(
        manifest["triggers"]["channelEvent"]["hasInstanceHooks"],
        true
    );
    assert_eq!(
        manifest["triggers"]["ticketEvent"]["hasInstanceHooks"],
        false
    );
    assert_eq!(
        manifest["dataSources"]["priorities"]["dataSourceType"],
        "picklist"
    );

    // HTTP through the allow-list with the connection's key, and a structured log line.
    let run = harness
        .action(
            "createTicket",
            json!({"subject": "Printer on fire", "priority": "urgent"}),
        )
        .await
        .unwrap();
    assert_eq!(run.json().unwrap(), json!({"id": 42}), "{:?}", run.outcome);
    assert_eq!(run.messages(), vec!["created ticket 42"]);
    assert_eq!(run.logs[0].fields.as_deref(), Some(r#"{"id":42}"#));
    let request = requests.recv().unwrap();
    assert!(request.starts_with("POST /tickets HTTP/1.1"), "{request}");
    assert!(request.contains("authorization: Bearer k-1"), "{request}");
    assert!(
        request.ends_with(r#"{"subject":"Printer on fire","urgent":true,"tags":[]}"#),
        "{request}"
    );
    // A bad enum value is invalid input naming the field.
    let run = harness
        .action("createTicket", json!({"subject": "x", "priority": "high"}))
        .await
        .unwrap();
    assert_eq!(kind(&run), GuestErrorKind::InvalidInput);
    assert!(run.guest_error().unwrap().message.contains("priority"));

    // HTTP statuses and refusals map to error kinds; the message keeps no query string.
    let fetch = |url: String| harness.action("fetch", json!({ "url": url }));
    let run = fetch(format!("{refusing}/me?api_key=secret"))
        .await
        .unwrap();
    assert_eq!(kind(&run), GuestErrorKind::Connection);
    let error = run.guest_error().unwrap();
    assert_eq!(error.connection.as_deref(), Some("acme"));
    assert!(error.message.contains("answered 401"), "{}", error.message);
    assert!(!error.message.contains("secret"), "{}", error.message);
    let run = fetch(format!("{overloaded}/me")).await.unwrap();
    assert_eq!(kind(&run), GuestErrorKind::Retryable);
    let run = fetch(format!("{missing}/me")).await.unwrap();
    assert_eq!(kind(&run), GuestErrorKind::Fatal);
    let run = fetch("http://127.0.0.1:9/not-allowed".into())
        .await
        .unwrap();
    assert_eq!(kind(&run), GuestErrorKind::Fatal);
    assert!(
        run.guest_error().unwrap().message.contains("allow-list"),
        "{:?}",
        run.outcome
    );

    // State: a CAS-loop counter in flow scope, compare-and-swap in instance scope.
    let harness = harness.with_state(Scope::Flow, "count", json!(40));
    let run = harness.action("count", json!({"by": 2})).await.unwrap();
    let first = run.json().unwrap();
    assert_eq!(first["count"], 42);
    assert_eq!(first["first"], true);
    assert_eq!(first["last"], json!({"count": 42}));
    let run = harness.action("count", json!({})).await.unwrap();
    assert_eq!(run.json().unwrap()["count"], 43);
    assert_eq!(run.json().unwrap()["first"], false);
    assert_eq!(harness.state(Scope::Flow, "count"), Some(json!(43)));
    let change = run
        .state_changes
        .iter()
        .find(|change| change.key == "count")
        .unwrap();
    assert_eq!(
        (change.before.clone(), change.after.clone()),
        (Some(json!(42)), Some(json!(43)))
    );
    let run = harness.action("forget", json!(null)).await.unwrap();
    assert_eq!(run.json().unwrap(), json!({"existed": true, "now": null}));
    assert_eq!(harness.state(Scope::Flow, "count"), None);

    // The execution context and config; print reaches the log.
    let run = harness.action("whoami", json!({})).await.unwrap();
    let me = run.json().unwrap();
    assert_eq!(me["tenant"], "test-tenant");
    assert_eq!(me["flow"], "test-flow");
    assert_eq!(me["webhook"], "https://hooks.sluice.test/test-flow");
    assert_eq!(me["region"], "eu");
    assert_eq!(me["config"]["webhookSecret"], "s3cret");
    assert_eq!(run.messages(), vec!["whoami called"]);
    let run = harness.action("needsRegion", json!({})).await.unwrap();
    assert_eq!(run.json().unwrap(), json!("eu"));

    // Outputs with status, headers and branch; bytes with a content type.
    let run = harness.action("shaped", json!({"id": 7})).await.unwrap();
    let output = run.output().unwrap();
    assert_eq!(output.status, Some(201));
    assert_eq!(output.branch.as_deref(), Some("found"));
    assert_eq!(output.headers, vec![("location".into(), "/t/1".into())]);
    let run = harness
        .action("shaped", json!({"csv": true}))
        .await
        .unwrap();
    let output = run.output().unwrap();
    assert_eq!(output.data, Data::Bytes(b"a,b\n1,2\n".to_vec()));
    assert_eq!(output.content_type.as_deref(), Some("text/csv"));

    // Each error kind.
    let run = harness
        .action("flaky", json!({"kind": "retryable"}))
        .await
        .unwrap();
    assert_eq!(kind(&run), GuestErrorKind::Retryable);
    let run = harness
        .action("flaky", json!({"kind": "connection"}))
        .await
        .unwrap();
    assert_eq!(kind(&run), GuestErrorKind::Connection);
    assert_eq!(
        run.guest_error().unwrap().connection.as_deref(),
        Some("acme")
    );
    let run = harness.action("flaky", json!({})).await.unwrap();
    assert_eq!(kind(&run), GuestErrorKind::InvalidInput);

    // The webhook: a signed request is accepted on its branch with a 202; a forged one
    // is refused with 401; a challenge is answered without running the flow.
    let body = br#"{"ticket": 42, "urgent": true}"#.to_vec();
    let signed = HttpRequest {
        method: "POST".into(),
        headers: vec![("x-hub-signature-256".into(), sign_github(b"s3cret", &body))],
        body: body.clone(),
        ..HttpRequest::default()
    };
    let run = harness
        .trigger("ticketEvent", signed, json!({}))
        .await
        .unwrap();
    match run.trigger_outcome().unwrap() {
        TriggerOutcome::Accept {
            payload,
            branch,
            response,
        } => {
            assert_eq!(payload, &Data::Json(r#"{"ticket":42}"#.into()));
            assert_eq!(branch.as_deref(), Some("urgent"));
            assert_eq!(response.as_ref().map(|r| r.status), Some(202));
        }
        other => panic!("expected accept, got {other:?}"),
    }
    let forged = HttpRequest {
        method: "POST".into(),
        headers: vec![("x-hub-signature-256".into(), sign_github(b"guess", &body))],
        body,
        ..HttpRequest::default()
    };
    let run = harness
        .trigger("ticketEvent", forged, json!({}))
        .await
        .unwrap();
    assert!(
        matches!(run.trigger_outcome().unwrap(), TriggerOutcome::Respond { response } if response.status == 401),
        "{:?}",
        run.outcome
    );
    let challenge = HttpRequest {
        method: "GET".into(),
        query: vec![("challenge".into(), "abc".into())],
        ..HttpRequest::default()
    };
    let run = harness
        .trigger("ticketEvent", challenge, json!({}))
        .await
        .unwrap();
    match run.trigger_outcome().unwrap() {
        TriggerOutcome::Respond { response } => assert_eq!(response.body, b"abc"),
        other => panic!("expected respond, got {other:?}"),
    }

    // Instance hooks write and delete instance state; their inputs are parsed.
    let run = harness
        .deploy("channelEvent", json!({"channel": "ops"}))
        .await
        .unwrap();
    assert!(run.guest_error().is_err(), "{:?}", run.outcome);
    assert_eq!(
        harness.state(Scope::Instance, "subscription"),
        Some(json!({"channel": "ops", "url": "https://hooks.sluice.test/test-flow"}))
    );
    let run = harness.deploy("channelEvent", json!({})).await.unwrap();
    assert_eq!(kind(&run), GuestErrorKind::InvalidInput);
    harness
        .remove("channelEvent", json!({"channel": "ops"}))
        .await
        .unwrap();
    assert_eq!(harness.state(Scope::Instance, "subscription"), None);

    // The data source.
    let run = harness.data_source("priorities", json!({})).await.unwrap();
    assert_eq!(
        run.data_source().unwrap(),
        json!([
            {"key": "low", "label": "Low"},
            {"key": "normal", "label": "Normal"},
            {"key": "urgent", "label": "Urgent"}
        ])
    );
}

#[tokio::test]
async fn a_python_flow_invokes_components_and_flows() {
    let flow = python_example("flow-py").unwrap();
    let text = std::fs::read(example("text").unwrap()).unwrap();
    let notify = std::fs::read(example("hello-flow").unwrap()).unwrap();
    let harness = Harness::from_file(&flow)
        .unwrap()
        .with_component("text", &text)
        .unwrap()
        .with_flow("notify", &notify)
        .unwrap();

    let manifest = harness.manifest().await.unwrap();
    assert_eq!(manifest["name"], "ids-to-numbers");
    assert_eq!(manifest["trigger"], json!({"type": "webhook"}));

    let run = harness
        .flow(json!({"ids": ["gh-13", "gh-29"], "notify": true}))
        .await
        .unwrap();
    let expected = json!({"numbers": [13, 29], "total": 42});
    let mut with_notified = expected.clone();
    with_notified["notified"] = expected.clone();
    assert_eq!(run.json().unwrap(), with_notified, "{:?}", run.outcome);
    let calls: Vec<(&str, &str)> = run
        .invocations
        .iter()
        .map(|call| (call.component.as_str(), call.action.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("text", "replace"),
            ("text", "toInteger"),
            ("text", "replace"),
            ("text", "toInteger")
        ]
    );
    assert_eq!(run.flow_invocations.len(), 1);
    assert_eq!(run.flow_invocations[0].payload, expected);

    // A callee's error comes back with its kind: the flow does not catch it, so the
    // SDK reports it as the same kind.
    let run = harness.flow(json!({"ids": ["gh-x"]})).await.unwrap();
    assert_eq!(kind(&run), GuestErrorKind::InvalidInput);
    assert!(
        run.guest_error()
            .unwrap()
            .message
            .contains("not an integer"),
        "{:?}",
        run.outcome
    );
    // A payload of the wrong shape is invalid input naming the field.
    let run = harness.flow(json!({"ids": "gh-1"})).await.unwrap();
    assert_eq!(kind(&run), GuestErrorKind::InvalidInput);
    assert!(run.guest_error().unwrap().message.contains("ids"));
}

#[test]
fn the_sdk_native_unit_tests_pass() {
    let output = Command::new(venv_python().unwrap())
        .args(["-m", "unittest", "discover", "-s", "tests", "-v"])
        .current_dir(sdk_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    // Not an empty discovery: the suite's tests ran.
    assert!(
        report.contains("\nOK") && !report.contains("Ran 0 tests"),
        "{report}"
    );
}
