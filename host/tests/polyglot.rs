//! Guests in other languages on `sluice serve`: the GitHub-Zendesk sync published with
//! the Zendesk connector in TypeScript (`examples/zendesk-ts`, componentize-js) and the
//! text connector in Python (`examples/text-py`, componentize-py) in place of their
//! Rust twins, uploaded (their compile outlasts the upload wait, so the uploads are
//! followed to `ready`), deployed, and driven by webhooks through the shared sync
//! scenario the Rust components pass.

mod support;

use std::sync::Mutex;

use serde_json::{Value, json};
use sluice_fakes::scenario::{GITHUB_SECRET, REPO, run_sync_scenario};
use sluice_fakes::{FakeGithub, FakeZendesk};
use sluice_runtime::guest_build::js::js_example;
use sluice_runtime::guest_build::python::python_example;
use support::sync::HttpDriver;
use support::{Client, Server};

const GITHUB_TOKEN: &str = "gh-token";
const ZENDESK_TOKEN: &str = "zd-token";

/// Uploads `bytes` asking not to wait, and follows the upload until its compile ends.
async fn upload_following(client: &Client, bytes: Vec<u8>) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/components", client.base))
        .bearer_auth(&client.key)
        .header("content-type", "application/wasm")
        .header("prefer", "respond-async")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    for _ in 0..6000 {
        let upload = client.get(&location).await.expect(200).body;
        match upload["status"].as_str() {
            Some("compiling") => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Some("ready") => return upload["component"].clone(),
            _ => panic!("the upload failed: {upload}"),
        }
    }
    panic!("the upload at {location} is still compiling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_runs_with_typescript_and_python_connectors() {
    let zendesk_ts =
        std::fs::read(js_example("zendesk-ts").unwrap_or_else(|e| panic!("{e}"))).unwrap();
    let text_py =
        std::fs::read(python_example("text-py").unwrap_or_else(|e| panic!("{e}"))).unwrap();
    let server = Server::start();
    let client = server.tenant("Acme");
    client.upload_example("github").await;
    let zendesk = upload_following(&client, zendesk_ts).await;
    assert_eq!(zendesk["key"], "zendesk", "{zendesk}");
    let text = upload_following(&client, text_py).await;
    assert_eq!(text["key"], "text", "{text}");
    // The versions record what their compile cost.
    let version = client
        .get(zendesk["url"].as_str().unwrap())
        .await
        .expect(200)
        .body;
    assert!(
        version["compile"]["timeUs"].as_i64().unwrap() > 0,
        "{version}"
    );

    let definition = std::fs::read(
        sluice_runtime::guest_build::examples_dir().join("flows/github-zendesk-sync.yaml"),
    )
    .unwrap();
    let reply = client
        .post_bytes(
            "/v1/integrations/github-zendesk/versions",
            "application/yaml",
            definition,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let customer = client.customer("Widgets Inc").await;
    let github = FakeGithub::start(GITHUB_TOKEN).await;
    github.add_repo(REPO);
    let fake_zendesk = FakeZendesk::start(ZENDESK_TOKEN).await;
    let driver = HttpDriver {
        client: &client,
        deploy: json!({
            "customerId": customer,
            "integration": "github-zendesk",
            "name": "Widgets sync",
            "config": {"githubRepository": REPO, "githubWebhookSecret": GITHUB_SECRET},
            "connections": {
                "github": {"kind": "oauth2", "fields": {"apiBaseUrl": github.url()}, "token": {"accessToken": GITHUB_TOKEN}},
                "zendesk": {"kind": "oauth2", "fields": {"baseUrl": fake_zendesk.url()}, "token": {"accessToken": ZENDESK_TOKEN}},
            },
            "allowedHosts": [github.url(), fake_zendesk.url()],
        }),
        instance: Mutex::new(None),
    };
    run_sync_scenario(&driver, &github, &fake_zendesk).await;
}
