//! The `http` component built for wasm32-wasip2 and run through the runtime's test
//! harness against a small REST API on loopback: methods, query and headers, JSON and
//! raw bodies, bearer tokens from connections, the allow-list, and status mapping.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{AppendHeaders, IntoResponse};
use axum::routing::{any, get};
use serde_json::{Value, json};
use sluice_runtime::guest_build::example;
use sluice_runtime::harness::Harness;
use sluice_runtime::{Connection, GuestErrorKind, OAuthToken};

/// The built component in a new harness (each call loads and compiles it anew).
fn component() -> Harness {
    let path = example("http").unwrap_or_else(|e| panic!("{e}"));
    Harness::from_file(path).unwrap_or_else(|e| panic!("{e}"))
}

/// The stand-in API: `/echo` answers with what it received as JSON, `/text` and
/// `/bytes` with a text and a binary body, `/status/{code}` with that status, and
/// `/slow` after two seconds.
async fn api() -> String {
    async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
        let headers: BTreeMap<String, String> = headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    value.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        (
            AppendHeaders([("x-echo", "1"), ("x-echo", "2")]),
            axum::Json(json!({
                "method": method.as_str(),
                "path": uri.path(),
                "query": uri.query(),
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            })),
        )
    }
    async fn status(Path(code): Path<u16>) -> impl IntoResponse {
        let status = StatusCode::from_u16(code).unwrap();
        (
            status,
            axum::Json(json!({"message": format!("status {code}")})),
        )
    }
    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(2)).await;
        "late"
    }
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/text", get(|| async { "plain text" }))
        .route(
            "/bytes",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    vec![0xffu8, 0, 1],
                )
            }),
        )
        .route("/status/{code}", any(status))
        .route("/slow", get(slow));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

async fn allowed() -> (Harness, String) {
    let base = api().await;
    (component().allow_host(&base).unwrap(), base)
}

fn oauth(key: &str, token: &str) -> Connection {
    Connection {
        key: key.into(),
        kind: "oauth2".into(),
        fields: json!({}),
        token: Some(OAuthToken {
            access_token: token.into(),
            token_type: "bearer".into(),
            expires_at_ms: None,
            scopes: vec![],
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_query_and_headers() {
    let (harness, base) = allowed().await;
    let run = harness
        .action(
            "request",
            json!({
                "method": "get",
                "url": format!("{base}/echo?fixed=1"),
                "query": {"q": "a b&c", "page": 2, "tag": ["x", "y"]},
                "headers": {"X-Trace": "t-1", "accept": "application/json"},
            }),
        )
        .await
        .unwrap();
    let out = run.json().unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(out["headers"]["content-type"], "application/json");
    // A repeated response header comes back joined.
    assert_eq!(out["headers"]["x-echo"], "1, 2");
    let echoed = &out["body"];
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["path"], "/echo");
    assert_eq!(echoed["query"], "fixed=1&page=2&q=a%20b%26c&tag=x&tag=y");
    assert_eq!(echoed["headers"]["x-trace"], "t-1");
    assert_eq!(echoed["headers"].get("authorization"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_json_and_raw_bodies() {
    let (harness, base) = allowed().await;
    let run = harness
        .action(
            "request",
            json!({"method": "POST", "url": format!("{base}/echo"), "json": {"a": [1, 2], "b": null}}),
        )
        .await
        .unwrap();
    let echoed = &run.json().unwrap()["body"];
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["headers"]["content-type"], "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(echoed["body"].as_str().unwrap()).unwrap(),
        json!({"a": [1, 2], "b": null})
    );

    let run = harness
        .action(
            "request",
            json!({
                "method": "PUT",
                "url": format!("{base}/echo"),
                "body": "name=Ada&role=admin",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            }),
        )
        .await
        .unwrap();
    let echoed = &run.json().unwrap()["body"];
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(echoed["body"], "name=Ada&role=admin");
    assert_eq!(
        echoed["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );

    // Text and binary responses.
    let run = harness
        .action(
            "request",
            json!({"method": "GET", "url": format!("{base}/text")}),
        )
        .await
        .unwrap();
    assert_eq!(run.json().unwrap()["body"], "plain text");
    let run = harness
        .action(
            "request",
            json!({"method": "GET", "url": format!("{base}/bytes")}),
        )
        .await
        .unwrap();
    let out = run.json().unwrap();
    assert_eq!(
        (&out["body"], &out["bodyEncoding"]),
        (&json!("/wAB"), &json!("base64"))
    );

    // Both bodies at once is a mistake in the input.
    let run = harness
        .action(
            "request",
            json!({"method": "POST", "url": format!("{base}/echo"), "json": {}, "body": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(
        run.guest_error().unwrap().kind,
        GuestErrorKind::InvalidInput
    );
    // So is a misspelt field, rather than a silently header-less request.
    let run = harness
        .action(
            "request",
            json!({"method": "GET", "url": format!("{base}/echo"), "header": {"a": "b"}}),
        )
        .await
        .unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::InvalidInput);
    assert!(error.message.contains("header"), "{}", error.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_from_a_connection() {
    let (harness, base) = allowed().await;
    let harness = harness
        .with_connection(oauth("crm", "oauth-t0k"))
        .with_connection(Connection {
            key: "legacy".into(),
            kind: "api-key".into(),
            fields: json!({"apiKey": "k-123"}),
            token: None,
        })
        .with_connection(Connection {
            key: "empty".into(),
            kind: "api-key".into(),
            fields: json!({}),
            token: None,
        });
    let authorization = |connection: &str| {
        let harness = harness.clone();
        let url = format!("{base}/echo");
        let connection = connection.to_string();
        async move {
            harness
                .action(
                    "request",
                    json!({"method": "GET", "url": url, "connection": connection}),
                )
                .await
                .unwrap()
        }
    };
    let run = authorization("crm").await;
    assert_eq!(
        run.json().unwrap()["body"]["headers"]["authorization"],
        "Bearer oauth-t0k"
    );
    let run = authorization("legacy").await;
    assert_eq!(
        run.json().unwrap()["body"]["headers"]["authorization"],
        "Bearer k-123"
    );
    for missing in ["empty", "nowhere"] {
        let run = authorization(missing).await;
        let error = run.guest_error().unwrap();
        assert_eq!(error.kind, GuestErrorKind::Connection, "{}", error.message);
        assert_eq!(error.connection.as_deref(), Some(missing));
    }

    let run = harness
        .action(
            "request",
            json!({"method": "GET", "url": format!("{base}/echo"), "connection": "crm", "headers": {"Authorization": "Basic x"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        run.guest_error().unwrap().kind,
        GuestErrorKind::InvalidInput
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_off_the_allow_list_are_refused() {
    let (harness, base) = allowed().await;
    for url in ["http://127.0.0.2:9/echo", "https://api.example.com/v1"] {
        let run = harness
            .action("request", json!({"method": "GET", "url": url}))
            .await
            .unwrap();
        let error = run.guest_error().unwrap();
        assert_eq!(error.kind, GuestErrorKind::Fatal, "{}", error.message);
        assert!(error.message.contains("allow-list"), "{}", error.message);
    }
    // Not even the API itself, without the rule.
    let run = component()
        .action(
            "request",
            json!({"method": "GET", "url": format!("{base}/echo")}),
        )
        .await
        .unwrap();
    assert!(run.guest_error().unwrap().message.contains("allow-list"));

    let run = harness
        .action("request", json!({"method": "GET", "url": "ftp://h/x"}))
        .await
        .unwrap();
    assert_eq!(
        run.guest_error().unwrap().kind,
        GuestErrorKind::InvalidInput
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_are_returned_unless_fail_on_error() {
    let (harness, base) = allowed().await;
    let harness = harness.with_connection(oauth("crm", "t"));
    let call = |code: u16, fail: bool, connection: Option<&str>| {
        let harness = harness.clone();
        let mut input =
            json!({"method": "POST", "url": format!("{base}/status/{code}"), "failOnError": fail});
        if let Some(key) = connection {
            input["connection"] = json!(key);
        }
        async move { harness.action("request", input).await.unwrap() }
    };

    let run = call(401, false, None).await;
    let out = run.json().unwrap();
    assert_eq!(out["status"], 401);
    assert_eq!(out["body"], json!({"message": "status 401"}));
    assert_eq!(call(503, false, None).await.json().unwrap()["status"], 503);

    let run = call(401, true, Some("crm")).await;
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::Connection);
    assert_eq!(error.connection.as_deref(), Some("crm"));
    assert!(error.message.contains("HTTP 401"), "{}", error.message);
    assert_eq!(
        call(403, true, None).await.guest_error().unwrap().kind,
        GuestErrorKind::Connection
    );
    let run = call(503, true, None).await;
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::Retryable);
    assert!(error.message.contains("status 503"), "{}", error.message);
    assert_eq!(
        call(429, true, None).await.guest_error().unwrap().kind,
        GuestErrorKind::Retryable
    );
    assert_eq!(
        call(404, true, None).await.guest_error().unwrap().kind,
        GuestErrorKind::Fatal
    );
    assert_eq!(call(201, true, None).await.json().unwrap()["status"], 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_retryable() {
    let (harness, base) = allowed().await;
    let run = harness
        .action(
            "request",
            json!({"method": "GET", "url": format!("{base}/slow"), "timeoutMs": 200}),
        )
        .await
        .unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::Retryable, "{}", error.message);
}

#[tokio::test]
async fn manifest() {
    let manifest = component().manifest().await.unwrap();
    assert_eq!(manifest["key"], "http");
    let inputs = &manifest["actions"]["request"]["inputs"];
    assert_eq!(inputs["required"], json!(["method", "url"]));
    for field in [
        "headers",
        "query",
        "json",
        "body",
        "connection",
        "timeoutMs",
        "failOnError",
    ] {
        assert!(inputs["properties"][field].is_object(), "{field}: {inputs}");
    }
}
