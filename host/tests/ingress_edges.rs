//! Edges of the webhook ingress (issue 12, items 1 and 2), against a real `sluice
//! serve`, the real GitHub trigger (signature checked in its sandbox) and a fake
//! GitHub over loopback:
//!
//! - a forged request carrying a real `x-github-delivery` id, rejected by the trigger,
//!   does not take the dedupe id from the genuine delivery that follows; a dropped
//!   duplicate is an execution of its own (`duplicate`, pointing at the original),
//!   listed and replayable;
//! - a request the trigger refuses ends `rejected` (filterable), not `succeeded`;
//! - public webhook error bodies name no internal URL or host; JSON type errors of the
//!   API do not quote the submitted value back.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_fakes::scenario::{GITHUB_SECRET, REPO};
use sluice_fakes::{FakeGithub, WebhookEvent};
use support::{Client, Reply, Server, Sink, deliver, webhook_path};

const GITHUB_TOKEN: &str = "gh-token";

/// How long waiting for something the server should do soon may take before the
/// test gives up (only reached when something is broken).
const PATIENCE: Duration = Duration::from_secs(60);

/// How many times the flow posted `delivery`'s id to the sink: runs that got past
/// the trigger and the queue.
fn runs_of(sink: &Sink, delivery: &str) -> usize {
    sink.received()
        .iter()
        .filter(|body| body["delivery"] == delivery)
        .count()
}

/// `deliveries`: the GitHub trigger (signature checked), a FIFO queue deduplicating by
/// `x-github-delivery`, one step posting the delivery id to the sink. `ask`: a
/// synchronous flow calling the URL in config `Internal Url`, which the instance's
/// allow-list does not name.
const DEFINITION: &str = r#"
definitionVersion: 1
name: Signed relay
components:
  github: {version: 1}
  http: {version: 1}
configVars:
  - key: githubRepository
  - key: githubWebhookSecret
  - key: Sink Url
  - key: Internal Url
flows:
  - key: deliveries
    trigger: {component: github, trigger: issueEvent}
    queue: {fifo: true, dedupeId: headers.x-github-delivery}
    steps:
      - key: post
        action: http.request
        inputs:
          method: POST
          url: {type: configVar, value: Sink Url}
          json:
            type: complex
            value:
              delivery: {type: reference, value: trigger.results.headers.x-github-delivery}
          timeoutMs: 30000
          failOnError: true
  - key: ask
    synchronous: true
    steps:
      - key: lookup
        action: http.request
        inputs:
          method: GET
          url: {type: configVar, value: Internal Url}
          timeoutMs: 5000
          failOnError: true
"#;

/// A private name the tests look for in answers to the public.
const INTERNAL_HOST: &str = "billing.internal.corp";

struct Setup {
    server: Server,
    client: Client,
    github: FakeGithub,
    sink: Sink,
    instance: Value,
}

async fn setup(sink_delay: Duration) -> Setup {
    let server = Server::start_with(&["--webhook-rate-limit", "0"]);
    let client = server.tenant("edges");
    let github = FakeGithub::start(GITHUB_TOKEN).await;
    github.add_repo(REPO);
    let sink = Sink::start(sink_delay).await;
    client.upload_example("github").await;
    client.upload_example("http").await;
    client.publish("signed-relay", DEFINITION).await;
    let customer = client.customer("Edges customer").await;
    let instance = client
        .deploy_instance(
            &customer,
            "signed-relay",
            json!({
                "config": {
                    "githubRepository": REPO,
                    "githubWebhookSecret": GITHUB_SECRET,
                    "Sink Url": format!("{}/", sink.url),
                    "Internal Url": format!("http://{INTERNAL_HOST}:8443/v1/accounts"),
                },
                "connections": {
                    "github": {"kind": "oauth2", "fields": {"apiBaseUrl": github.url()}, "token": {"accessToken": GITHUB_TOKEN}},
                },
                "allowedHosts": [github.url(), sink.url],
            }),
        )
        .await;
    Setup {
        server,
        client,
        github,
        sink,
        instance,
    }
}

impl Setup {
    async fn send(&self, event: &WebhookEvent) -> Reply {
        let url = format!(
            "{}{}",
            self.server.url,
            webhook_path(&self.instance, "deliveries")
        );
        deliver(&url, &event.headers, event.body.clone()).await
    }

    async fn execution(&self, id: &str) -> Value {
        self.client
            .get(&format!("/v1/executions/{id}"))
            .await
            .expect(200)
            .body
    }

    /// Polls until the execution is no longer queued, waiting or running.
    async fn ended(&self, id: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let execution = self.execution(id).await;
            let status = execution["status"].as_str().unwrap_or("");
            if !["queued", "waiting", "running"].contains(&status) {
                return execution;
            }
            assert!(Instant::now() < deadline, "{id} did not end: {execution}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The ids of this tenant's executions with `status`.
    async fn ids_with_status(&self, status: &str) -> Vec<String> {
        self.client
            .all_executions(&format!("status={status}"))
            .await
            .iter()
            .filter_map(|execution| execution["id"].as_str().map(str::to_string))
            .collect()
    }
}

fn accepted(reply: &Reply) -> String {
    assert_eq!(reply.status, 202, "{}", reply.text);
    reply.body["executionId"]
        .as_str()
        .expect("an execution id")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_delivery_does_not_take_the_genuine_ones_dedupe_id() {
    let setup = setup(Duration::ZERO).await;
    let genuine = setup
        .github
        .open_issue(REPO, 7, "Real", "body", "octocat", GITHUB_SECRET);
    let delivery = genuine
        .header("x-github-delivery")
        .expect("a delivery id")
        .to_string();
    // The forger knows the delivery id (it is not secret), not the webhook secret.
    let forged = genuine
        .clone()
        .tampered(br#"{"action":"opened","issue":{"number":666},"forged":true}"#);

    let forged_id = accepted(&setup.send(&forged).await);
    let refused = setup.ended(&forged_id).await;
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert_eq!(
        runs_of(&setup.sink, &delivery),
        0,
        "the forgery ran the flow"
    );

    // The genuine delivery with that id runs: the rejected forgery never held it.
    let genuine_id = accepted(&setup.send(&genuine).await);
    let ran = setup.ended(&genuine_id).await;
    assert_eq!(ran["status"], "succeeded", "{ran}");
    assert_eq!(runs_of(&setup.sink, &delivery), 1);

    // A redelivery within the window is dropped, but recorded: an execution of its
    // own, `duplicate`, pointing at the delivery that holds the id.
    let repeat = setup.send(&genuine).await;
    assert_eq!(repeat.status, 200, "{}", repeat.text);
    assert_eq!(repeat.body["deduplicated"], true, "{}", repeat.text);
    assert_eq!(repeat.body["duplicateOf"], genuine_id.as_str());
    let duplicate_id = repeat.body["executionId"]
        .as_str()
        .expect("the duplicate's own id")
        .to_string();
    assert_ne!(duplicate_id, genuine_id);
    let duplicate = setup.execution(&duplicate_id).await;
    assert_eq!(duplicate["status"], "duplicate", "{duplicate}");
    assert_eq!(duplicate["duplicateOf"], genuine_id.as_str(), "{duplicate}");
    assert!(duplicate["finishedAt"].is_string(), "{duplicate}");
    assert_eq!(runs_of(&setup.sink, &delivery), 1, "the duplicate ran");

    // Both show up in the executions API by their status.
    assert!(
        setup
            .ids_with_status("duplicate")
            .await
            .contains(&duplicate_id)
    );
    let rejected = setup.ids_with_status("rejected").await;
    assert_eq!(rejected, vec![forged_id.clone()]);
    assert!(
        !setup
            .ids_with_status("succeeded")
            .await
            .contains(&forged_id),
        "the rejected forgery is listed as succeeded"
    );

    // The dropped duplicate can be replayed on purpose: it runs.
    let replay = setup
        .client
        .post(&format!("/v1/executions/{duplicate_id}/replay"), &json!({}))
        .await
        .expect(202);
    let replay_id = replay.body["executionId"].as_str().expect("an id");
    assert_eq!(replay.body["replayOf"], duplicate_id.as_str());
    let replayed = setup.ended(replay_id).await;
    assert_eq!(replayed["status"], "succeeded", "{replayed}");
    assert_eq!(runs_of(&setup.sink, &delivery), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_queued_before_the_original_ran_is_dropped_when_its_turn_comes() {
    // The first run is slow, so the repeat arrives while it is still running: only
    // when the repeat's turn comes is it known that the first one was accepted.
    let setup = setup(Duration::from_millis(1500)).await;
    let event = setup
        .github
        .open_issue(REPO, 8, "Twice", "body", "octocat", GITHUB_SECRET);
    let delivery = event
        .header("x-github-delivery")
        .expect("an id")
        .to_string();
    let first = accepted(&setup.send(&event).await);
    let second = accepted(&setup.send(&event).await);
    let first_done = setup.ended(&first).await;
    assert_eq!(first_done["status"], "succeeded", "{first_done}");
    let second_done = setup.ended(&second).await;
    assert_eq!(second_done["status"], "duplicate", "{second_done}");
    assert_eq!(second_done["duplicateOf"], first.as_str(), "{second_done}");
    assert_eq!(runs_of(&setup.sink, &delivery), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_errors_name_no_internal_host_and_type_errors_do_not_echo_values() {
    let setup = setup(Duration::ZERO).await;

    // A synchronous flow failing on a call to an internal service: the caller learns
    // that it failed and where to look, not the service's address.
    let url = format!(
        "{}{}",
        setup.server.url,
        webhook_path(&setup.instance, "ask")
    );
    let failed = deliver(&url, &[], b"{}".to_vec()).await;
    assert!(failed.status >= 400, "{}", failed.text);
    assert_eq!(
        failed.body["error"]["code"], "execution-failed",
        "{}",
        failed.text
    );
    assert!(
        !failed.text.contains(INTERNAL_HOST) && !failed.text.contains("8443"),
        "the public answer names the internal service: {}",
        failed.text
    );
    // The tenant still sees the whole error in its record.
    let id = failed.body["error"]["executionId"]
        .as_str()
        .expect("the execution id");
    let shown = setup.execution(id).await;
    assert!(
        shown["error"]
            .as_str()
            .is_some_and(|error| error.contains(INTERNAL_HOST)),
        "{shown}"
    );

    // A deploy whose hook fails on the internal API: the webhook's 409 says the
    // instance is not deployed, not what the hook's error said about the API.
    let customer = setup.client.customer("Broken customer").await;
    let broken_api = format!("http://{INTERNAL_HOST}:8443");
    let broken = setup
        .client
        .post(
            "/v1/instances",
            &json!({
                "customerId": customer,
                "integration": "signed-relay",
                "config": {
                    "githubRepository": REPO,
                    "githubWebhookSecret": GITHUB_SECRET,
                    "Sink Url": format!("{}/", setup.sink.url),
                    "Internal Url": broken_api,
                },
                "connections": {
                    "github": {"kind": "oauth2", "fields": {"apiBaseUrl": broken_api}, "token": {"accessToken": GITHUB_TOKEN}},
                },
                "allowedHosts": [broken_api],
            }),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(broken["status"], "failed", "{broken}");
    assert!(
        broken.to_string().contains(INTERNAL_HOST),
        "the tenant's own API answer keeps the detail: {broken}"
    );
    let url = format!(
        "{}{}",
        setup.server.url,
        webhook_path(&broken, "deliveries")
    );
    let refused = deliver(&url, &[], b"{}".to_vec()).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "instance-not-deployed");
    assert!(
        !refused.text.contains(INTERNAL_HOST),
        "the public answer names the internal API: {}",
        refused.text
    );

    // A secret sent in the wrong shape: refused, and not quoted back.
    const SECRET: &str = "ghp_DoNotEchoThisSecret42";
    for connections in [
        json!({"github": SECRET}),
        json!({"github": {"kind": "oauth2", "token": SECRET}}),
        json!({"github": {"kind": "oauth2", "token": {"accessToken": SECRET, "scopes": SECRET}}}),
        json!({"github": {"kind": {"secret": SECRET}}}),
    ] {
        let reply = setup
            .client
            .post(
                "/v1/instances",
                &json!({
                    "customerId": customer,
                    "integration": "signed-relay",
                    "connections": connections,
                }),
            )
            .await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert_eq!(reply.body["error"]["code"], "invalid-request");
        assert!(
            !reply.text.contains(SECRET) && !reply.text.contains("DoNotEcho"),
            "the error quotes the submitted value: {}",
            reply.text
        );
        // Still says what is wrong.
        assert!(
            reply.text.contains("invalid type") && reply.text.contains("expected"),
            "{}",
            reply.text
        );
    }
}
