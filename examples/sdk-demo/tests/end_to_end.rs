//! `sdk-demo` built for wasm32-wasip2 and run through the runtime's test harness: the
//! SDK's dispatch, state, logging, config, connections, HMAC-checked triggers, hooks
//! and HTTP client, end to end, as the guest-sdk README's testing section does it.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use sluice_runtime::harness::{Harness, Scope, build_component};
use sluice_runtime::{Connection, Data, GuestErrorKind, HttpRequest, TriggerOutcome};
use sluice_sdk::hmac::sign_github;

/// The built component in a new harness (each call loads and compiles it anew).
fn harness() -> Harness {
    let path = build_component(env!("CARGO_MANIFEST_DIR")).unwrap_or_else(|e| panic!("{e}"));
    Harness::from_file(path).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn manifest_comes_from_the_declaration() {
    let manifest = harness().manifest().await.unwrap();
    assert_eq!(manifest["key"], "sdk-demo");
    let greet = &manifest["actions"]["greet"];
    assert_eq!(greet["inputs"]["required"], json!(["name"]));
    assert_eq!(
        greet["inputs"]["properties"]["excited"]["default"],
        json!(false)
    );
    assert_eq!(
        manifest["triggers"]["github"]["staticBranchNames"],
        json!(["issues", "other"])
    );
    assert_eq!(
        manifest["dataSources"]["greetingStyles"]["dataSourceType"],
        "picklist"
    );
    assert_eq!(manifest["connections"][0]["key"], "api-key");
}

#[tokio::test]
async fn greet_counts_in_flow_state_and_logs() {
    let harness = harness().with_state(Scope::Flow, "greetings", json!(41));
    let run = harness
        .action("greet", json!({"name": "Ada", "excited": true}))
        .await
        .unwrap();
    assert_eq!(
        run.json().unwrap(),
        json!({"greeting": "Hello, Ada!", "count": 42})
    );
    assert_eq!(run.state_changes[0].after, Some(json!(42)));
    assert_eq!(run.messages(), vec!["greeted Ada"]);
    assert_eq!(
        serde_json::from_str::<Value>(run.logs[0].fields.as_deref().unwrap()).unwrap(),
        json!({"name": "Ada", "count": 42})
    );

    let run = harness.action("greet", json!({"name": 7})).await.unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::InvalidInput);
    assert!(error.message.contains("`name`"), "{}", error.message);
    let run = harness.action("wave", json!({})).await.unwrap();
    assert!(
        run.guest_error()
            .unwrap()
            .message
            .contains("known: `greet`, `postGreeting`")
    );
}

fn delivery(event: &str, secret: &str) -> HttpRequest {
    let body = br#"{"action":"opened","issue":{"number":7}}"#.to_vec();
    HttpRequest {
        method: "POST".into(),
        headers: vec![
            ("x-github-event".into(), event.into()),
            ("x-hub-signature-256".into(), sign_github(secret, &body)),
        ],
        body,
        ..HttpRequest::default()
    }
}

#[tokio::test]
async fn webhook_verifies_signatures_from_config() {
    let harness = harness().with_config("webhookSecret", json!("s3cret"));
    let run = harness
        .trigger("github", delivery("issues", "s3cret"), json!({}))
        .await
        .unwrap();
    match run.trigger_outcome().unwrap() {
        TriggerOutcome::Accept {
            payload: Data::Json(text),
            branch,
            ..
        } => {
            let payload: Value = serde_json::from_str(text).unwrap();
            assert_eq!(payload["event"], "issues");
            assert_eq!(payload["body"]["issue"]["number"], 7);
            assert_eq!(branch.as_deref(), Some("issues"));
        }
        other => panic!("expected an accepted JSON payload, got {other:?}"),
    }

    let run = harness
        .trigger("github", delivery("issues", "forged"), json!({}))
        .await
        .unwrap();
    match run.trigger_outcome().unwrap() {
        TriggerOutcome::Respond { response } => {
            assert_eq!(response.status, 401);
            assert_eq!(response.body, b"invalid signature");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    let run = harness
        .trigger(
            "github",
            delivery("push", "s3cret"),
            json!({"events": ["issues"]}),
        )
        .await
        .unwrap();
    assert!(matches!(
        run.trigger_outcome().unwrap(),
        TriggerOutcome::Respond { response } if response.status == 202
    ));

    // Without the config variable the instance is misconfigured: invalid input.
    let run = self::harness()
        .trigger("github", delivery("issues", "s3cret"), json!({}))
        .await
        .unwrap();
    assert_eq!(
        run.guest_error().unwrap().kind,
        GuestErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn hooks_and_data_source() {
    let harness = harness();
    let run = harness.deploy("github", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    assert_eq!(
        harness.state(Scope::Instance, "webhook:test-flow"),
        Some(json!("https://hooks.sluice.test/test-flow"))
    );
    harness.remove("github", json!({})).await.unwrap();
    assert_eq!(harness.state(Scope::Instance, "webhook:test-flow"), None);

    let run = harness
        .data_source("greetingStyles", json!({}))
        .await
        .unwrap();
    assert_eq!(
        run.data_source().unwrap()[1],
        json!({"key": "excited", "label": "Excited"})
    );
}

/// A stand-in for the API: `POST /greetings` echoes the JSON it receives with the
/// byte count and the authorization header; `POST /status/{code}/greetings` answers
/// with that status.
async fn api() -> String {
    async fn greetings(headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let received: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let reply = json!({"bytes": body.len(), "authorization": auth, "received": received});
        (StatusCode::OK, reply.to_string())
    }
    async fn status(
        axum::extract::Path(code): axum::extract::Path<u16>,
    ) -> (StatusCode, &'static str) {
        (
            StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT),
            "no greetings today",
        )
    }
    let app = Router::new()
        .route("/greetings", post(greetings))
        .route("/status/{code}/greetings", post(status))
        // axum refuses bodies over 2 MB by default; the test sends more.
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn api_connection(base_url: &str) -> Connection {
    Connection {
        key: "api-key".into(),
        kind: "api-key".into(),
        fields: json!({"apiKey": "k-123", "baseUrl": base_url}),
        token: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_client_round_trips_large_bodies_and_maps_statuses() {
    let base = api().await;
    let harness = harness()
        .with_connection(api_connection(&base))
        .allow_host(&base)
        .unwrap();

    // 3 MiB out and back: more than the host buffers before the request is sent (two
    // 1 MiB chunks by default), so the body is written in chunks as the host accepts
    // them, and read until the stream closes.
    let name = "a".repeat(3 << 20);
    let run = harness
        .action("postGreeting", json!({"name": name}))
        .await
        .unwrap();
    let reply = run.json().unwrap();
    assert_eq!(reply["authorization"], "Bearer k-123");
    let sent = json!({"greeting": format!("Hello, {name}.")}).to_string();
    assert_eq!(reply["bytes"], sent.len());
    assert_eq!(
        reply["received"]["greeting"].as_str().unwrap().len(),
        name.len() + 8
    );

    let status = |code: u16| {
        let harness = harness
            .clone()
            .with_connection(api_connection(&format!("{base}/status/{code}")));
        async move {
            let run = harness
                .action("postGreeting", json!({"name": "Ada"}))
                .await
                .unwrap();
            run.guest_error().unwrap().clone()
        }
    };
    let unauthorized = status(401).await;
    assert_eq!(
        unauthorized.kind,
        GuestErrorKind::Connection,
        "{}",
        unauthorized.message
    );
    assert_eq!(unauthorized.connection.as_deref(), Some("api-key"));
    assert!(
        unauthorized
            .message
            .contains("HTTP 401: no greetings today"),
        "{}",
        unauthorized.message
    );
    assert_eq!(status(503).await.kind, GuestErrorKind::Retryable);
    assert_eq!(status(404).await.kind, GuestErrorKind::Fatal);

    // A host outside the allow-list is refused by the host, and said so.
    let denied = harness
        .clone()
        .with_connection(api_connection("http://127.0.0.2:9"))
        .action("postGreeting", json!({"name": "Ada"}))
        .await
        .unwrap();
    let error = denied.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::Fatal);
    assert!(error.message.contains("allow-list"), "{}", error.message);

    // No connection configured: a connection error naming the key.
    let run = self::harness()
        .action("postGreeting", json!({"name": "Ada"}))
        .await
        .unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::Connection);
    assert_eq!(error.connection.as_deref(), Some("api-key"));
}
