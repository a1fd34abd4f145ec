//! Webhook request handling: arbitrary requests to the `/webhooks/{token}[/{path}]`
//! routes of the server's real router (`sluice::api::router`) over a real store in a
//! temporary data directory, where an instance of a component-free integration is
//! deployed with a FIFO flow deduplicated on a header (retries cancelled by a body
//! field) and a synchronous flow that answers with the request's body.
//!
//! Input: a request in a loose HTTP/1.1 form,
//!
//! ```text
//! <target> <METHOD> <path suffix and query>
//! <name>: <value>
//! ...
//!
//! <body>
//! ```
//!
//! `<target>` is `queued`, `answer` or anything else (an unknown token). The handler
//! must never panic, and must never answer 500: a request is refused (4xx) or accepted.
#![no_main]

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use sluice::app::AppState;
use sluice::config::ServerConfig;
use sluice::store::TenantStore;
use sluice::store::sqlite::SqliteStore;
use tower::ServiceExt;

const DEFINITION: &str = r#"
definitionVersion: 1
name: Fuzz
flows:
  - key: queued
    queue: {fifo: true, dedupeId: headers.x-delivery}
    retry: {attempts: 2, uniqueRequestId: body.id}
    steps:
      - key: done
        stopExecution: {body: {type: reference, value: trigger.results.body}}
  - key: answer
    synchronous: true
    steps:
      - key: reply
        stopExecution:
          status: 201
          headers: {type: value, value: {x-answer: "yes"}}
          body: {type: reference, value: trigger.results}
"#;

struct Setup {
    runtime: tokio::runtime::Runtime,
    router: Router,
    /// Webhook path (`/webhooks/<token>`) of each flow.
    queued: String,
    answer: String,
    _data: tempfile::TempDir,
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a readable body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn api(router: &Router, key: &str, path: &str, content_type: &str, body: Vec<u8>) -> Value {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    let (status, body) = call(router, request).await;
    assert!(status.is_success(), "setup: {path}: {status} {body}");
    body
}

fn webhook_path(instance: &Value, flow: &str) -> String {
    let url = instance["flows"]
        .as_array()
        .and_then(|flows| flows.iter().find(|f| f["key"] == flow))
        .and_then(|f| f["webhookUrl"].as_str())
        .unwrap_or_else(|| panic!("setup: no webhook for {flow} in {instance}"));
    url[url.find("/webhooks/").expect("a webhook URL")..].to_string()
}

fn setup() -> Setup {
    let data = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (router, queued, answer) = runtime.block_on(async {
        let key = "sk_fuzz-webhook-key";
        let store = SqliteStore::open(&data.path().join("sluice.db"))
            .await
            .unwrap();
        store
            .create_tenant("Fuzz", &sluice::api::auth::key_hash(key), "sk_fuzz")
            .await
            .unwrap();
        drop(store);
        let mut config = ServerConfig::new(data.path(), "127.0.0.1:0".parse().unwrap());
        // Every request is handled; the limiter is tested elsewhere.
        config.webhook_rate_limit = 0;
        config.max_webhook_bytes = 1 << 20;
        let state = AppState::open(config).await.expect("the server state");
        let router = sluice::api::router(state);
        api(
            &router,
            key,
            "/v1/integrations/fuzz/versions",
            "application/yaml",
            DEFINITION.into(),
        )
        .await;
        let customer = api(
            &router,
            key,
            "/v1/customers",
            "application/json",
            json!({"name": "C"}).to_string().into(),
        )
        .await;
        let instance = api(
            &router,
            key,
            "/v1/instances",
            "application/json",
            json!({"customerId": customer["id"], "integration": "fuzz"})
                .to_string()
                .into(),
        )
        .await;
        assert_eq!(instance["status"], "deployed", "setup: {instance}");
        (
            router,
            webhook_path(&instance, "queued"),
            webhook_path(&instance, "answer"),
        )
    });
    Setup {
        runtime,
        router,
        queued,
        answer,
        _data: data,
    }
}

static SETUP: OnceLock<Setup> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let setup = SETUP.get_or_init(setup);
    let (head, body) = match data.windows(2).position(|pair| pair == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").splitn(3, ' ');
    let base = match first.next().unwrap_or("") {
        "queued" => setup.queued.as_str(),
        "answer" => setup.answer.as_str(),
        _ => "/webhooks/0000000000000000000000000000000000000000000000000000000000000000",
    };
    let method = first.next().unwrap_or("POST");
    let suffix = first.next().unwrap_or("");
    let uri = if suffix.is_empty() || suffix.starts_with('?') {
        format!("{base}{suffix}")
    } else {
        format!("{base}/{suffix}")
    };
    let mut request = Request::builder().method(method).uri(uri);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            request = request.header(name.trim(), value.trim());
        }
    }
    // Requests that `http` refuses to build never reach a server either.
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return;
    };
    let (status, answer) = setup.runtime.block_on(call(&setup.router, request));
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{status}: {answer}"
    );
});
