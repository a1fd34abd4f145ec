//! Instances, webhooks and executions over HTTP against a real `sluice serve`: the
//! seed's GitHub-to-Zendesk sync (declarative and code-native) deployed as an instance
//! and driven through its webhook URLs by the shared scenario, with its queue policies
//! (one GitHub delivery sent many times at once runs once, a Zendesk outage is retried),
//! plus asynchronous deliveries, the executions API, API keys, disabled instances and
//! tenant isolation.

mod support;

use std::sync::Mutex;

use serde_json::{Value, json};
use sluice_fakes::scenario::{GITHUB_SECRET, REPO, run_sync_scenario};
use sluice_fakes::{FakeGithub, FakeZendesk};
use support::sync::HttpDriver;
use support::{Client, Reply, Server, deliver, execution_id_of, webhook_url};

const GITHUB_TOKEN: &str = "gh-token";
const ZENDESK_TOKEN: &str = "zd-token";

/// The two implementations of the sync: integration key, definition file under
/// `examples/flows/`, and the components it pins.
const DECLARATIVE: (&str, &str, &[&str]) = (
    "github-zendesk",
    "github-zendesk-sync.yaml",
    &["github", "zendesk", "text"],
);
const CODE_NATIVE: (&str, &str, &[&str]) = (
    "github-zendesk-code",
    "github-zendesk-sync-code.yaml",
    &["github", "zendesk", "github-zendesk-sync"],
);

/// Uploads the sync's components and integration, creates a customer; returns the
/// customer id.
async fn publish_sync(client: &Client) -> String {
    publish(client, DECLARATIVE).await
}

/// Uploads one implementation's components and integration, creates a customer;
/// returns the customer id.
async fn publish(client: &Client, (key, file, components): (&str, &str, &[&str])) -> String {
    for name in components {
        client.upload_example(name).await;
    }
    let definition = std::fs::read(
        sluice_runtime::guest_build::examples_dir()
            .join("flows")
            .join(file),
    )
    .unwrap();
    let reply = client
        .post_bytes(
            &format!("/v1/integrations/{key}/versions"),
            "application/yaml",
            definition,
        )
        .await;
    assert!(reply.status == 201 || reply.status == 200, "{}", reply.text);
    let customer = client
        .post(
            "/v1/customers",
            &json!({"name": format!("Widgets Inc ({key})"), "externalId": format!("widgets-{key}")}),
        )
        .await
        .expect(201);
    customer.body["id"].as_str().unwrap().to_string()
}

fn deploy_body(customer: &str, github: &FakeGithub, zendesk: &FakeZendesk) -> Value {
    deploy_body_of("github-zendesk", customer, github, zendesk)
}

fn deploy_body_of(
    integration: &str,
    customer: &str,
    github: &FakeGithub,
    zendesk: &FakeZendesk,
) -> Value {
    json!({
        "customerId": customer,
        "integration": integration,
        "name": "Widgets sync",
        "config": {"githubRepository": REPO, "githubWebhookSecret": GITHUB_SECRET},
        "connections": {
            "github": {"kind": "oauth2", "fields": {"apiBaseUrl": github.url()}, "token": {"accessToken": GITHUB_TOKEN}},
            "zendesk": {"kind": "oauth2", "fields": {"baseUrl": zendesk.url()}, "token": {"accessToken": ZENDESK_TOKEN}},
        },
        "allowedHosts": [github.url(), zendesk.url()],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_runs_as_a_deployed_instance_over_http() {
    let server = Server::start();
    let client = server.tenant("Acme");
    for implementation in [DECLARATIVE, CODE_NATIVE] {
        let customer = publish(&client, implementation).await;
        let github = FakeGithub::start(GITHUB_TOKEN).await;
        github.add_repo(REPO);
        let zendesk = FakeZendesk::start(ZENDESK_TOKEN).await;
        let driver = HttpDriver {
            client: &client,
            deploy: deploy_body_of(implementation.0, &customer, &github, &zendesk),
            instance: Mutex::new(None),
        };
        run_sync_scenario(&driver, &github, &zendesk).await;
        // The hooks registered the instance's own webhook URLs with the services.
        let instance = driver.instance();
        assert!(instance["connections"].to_string().contains("apiBaseUrl"));
        assert!(
            !instance.to_string().contains(GITHUB_TOKEN),
            "a secret came back: {instance}"
        );
    }
}

/// Deploys an instance of `implementation` against fresh fakes; returns them and the
/// instance.
async fn deployed(
    client: &Client,
    implementation: (&str, &str, &[&str]),
) -> (FakeGithub, FakeZendesk, Value) {
    let customer = publish(client, implementation).await;
    let github = FakeGithub::start(GITHUB_TOKEN).await;
    github.add_repo(REPO);
    let zendesk = FakeZendesk::start(ZENDESK_TOKEN).await;
    let instance = client
        .post(
            "/v1/instances",
            &deploy_body_of(implementation.0, &customer, &github, &zendesk),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(instance["status"], "deployed", "{instance}");
    (github, zendesk, instance)
}

/// GitHub redelivers, and may send one delivery several times at once. Eight copies of
/// one `issues/opened` delivery sent at the same moment open one ticket, for both
/// implementations: the GitHub flow's queue deduplicates on `x-github-delivery`, so
/// one copy runs and the seven others are recorded as its duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_copies_of_one_delivery_open_one_ticket() {
    let server = Server::start();
    let client = server.tenant("Acme");
    for implementation in [DECLARATIVE, CODE_NATIVE] {
        let (github, zendesk, instance) = deployed(&client, implementation).await;
        let url = webhook_url(&instance, "githubEvents");
        let opened = github.open_issue(REPO, 21, "Twice", "Sent 8 times", "octocat", GITHUB_SECRET);
        assert!(opened.header("x-github-delivery").is_some());
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
        let copies: Vec<_> = (0..8)
            .map(|_| {
                let (url, event, barrier) = (url.clone(), opened.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    deliver(&url, &event.headers, event.body).await
                })
            })
            .collect();
        let mut replies: Vec<Reply> = Vec::new();
        for copy in copies {
            replies.push(copy.await.unwrap());
        }
        // A copy is queued (202) while the first is undecided, or answered as a
        // duplicate (200) once it holds the delivery id; either way it is recorded.
        for reply in &replies {
            assert!(
                reply.status == 202 || (reply.status == 200 && reply.body["deduplicated"] == true),
                "{}: {} {}",
                implementation.0,
                reply.status,
                reply.text
            );
            assert!(execution_id_of(reply).is_some(), "{}", reply.text);
        }
        client
            .wait_until_idle(std::time::Duration::from_secs(60))
            .await;
        let tickets = zendesk.tickets();
        assert_eq!(
            tickets.len(),
            1,
            "{}: one delivery, one ticket: {tickets:?}",
            implementation.0
        );
        assert_eq!(tickets[0].external_id.as_deref(), Some("gh-21"));
        let id = instance["id"].as_str().unwrap();
        let runs: Vec<Value> = client
            .all_executions(&format!("instanceId={id}"))
            .await
            .into_iter()
            .filter(|run| run["flow"] == "githubEvents")
            .collect();
        assert_eq!(
            runs.len(),
            8,
            "{}: every copy is recorded: {runs:?}",
            implementation.0
        );
        let ran: Vec<&Value> = runs
            .iter()
            .filter(|run| run["status"] != "duplicate")
            .collect();
        assert_eq!(ran.len(), 1, "{}: one copy ran: {runs:?}", implementation.0);
        assert_eq!(ran[0]["status"], "succeeded", "{}", ran[0]);
        for run in runs.iter().filter(|run| run["status"] == "duplicate") {
            assert_eq!(run["duplicateOf"], ran[0]["id"], "{run}");
        }
    }
}

/// A Zendesk outage fails the execution that needed it; the flow's retry policy runs it
/// again until Zendesk answers, and the ticket is opened once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zendesk_outage_is_retried_by_the_flow_retry_policy() {
    // A minute of 20 ms: retries after 20, 40, 80... ms instead of 1, 2, 4... minutes.
    let server = Server::start_with(&["--minute-ms", "20"]);
    let client = server.tenant("Acme");
    for implementation in [DECLARATIVE, CODE_NATIVE] {
        let (github, zendesk, instance) = deployed(&client, implementation).await;
        let url = webhook_url(&instance, "githubEvents");
        // The next two Zendesk API calls fail: each run's first call (the ticket
        // lookup), so the first two runs fail and the third gets through.
        zendesk.fail_next(2);
        let opened = github.open_issue(
            REPO,
            31,
            "Outage",
            "Zendesk is down",
            "octocat",
            GITHUB_SECRET,
        );
        let reply = deliver(&url, &opened.headers, opened.body)
            .await
            .expect(202);
        let id = execution_id_of(&reply).unwrap();
        let mut execution = Value::Null;
        for _ in 0..600 {
            execution = client
                .get(&format!("/v1/executions/{id}"))
                .await
                .expect(200)
                .body;
            if matches!(
                execution["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            execution["status"], "succeeded",
            "{}: {execution}",
            implementation.0
        );
        assert_eq!(execution["attempt"], 3, "{}: {execution}", implementation.0);
        assert_eq!(zendesk.refused(), 2, "{}", implementation.0);
        let tickets = zendesk.tickets();
        assert_eq!(tickets.len(), 1, "{}: {tickets:?}", implementation.0);
        assert_eq!(tickets[0].external_id.as_deref(), Some("gh-31"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_deliveries_and_the_executions_api() {
    let server = Server::start();
    let client = server.tenant("Acme");
    let other = server.tenant("Other");
    let customer = publish_sync(&client).await;
    let github = FakeGithub::start(GITHUB_TOKEN).await;
    github.add_repo(REPO);
    let zendesk = FakeZendesk::start(ZENDESK_TOKEN).await;
    let instance = client
        .post("/v1/instances", &deploy_body(&customer, &github, &zendesk))
        .await
        .expect(201)
        .body;
    assert_eq!(instance["status"], "deployed", "{instance}");
    assert_eq!(github.hooks().len(), 1);
    let id = instance["id"].as_str().unwrap().to_string();
    let url = webhook_url(&instance, "githubEvents");

    // Asynchronous by default: stored, then 202 with the id.
    let event = github.open_issue(REPO, 7, "Async", "body", "octocat", GITHUB_SECRET);
    let reply = deliver(
        &format!("{url}/extra/path?x=1&y=a%20b"),
        &event.headers,
        event.body.clone(),
    )
    .await
    .expect(202);
    let execution_id = reply.body["executionId"].as_str().unwrap().to_string();
    assert_eq!(
        reply.headers["sluice-execution-id"].to_str().unwrap(),
        execution_id
    );
    let finished = client.finished_execution(&execution_id).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(finished["flow"], "githubEvents");
    assert!(
        finished["record"]["steps"].as_array().unwrap().len() >= 3,
        "{finished}"
    );
    assert!(zendesk.ticket_by_external_id("gh-7").is_some());

    // The stored trigger request: method, lower-cased headers, query, path suffix, body.
    let payload = client
        .get(&format!("/v1/executions/{execution_id}/payload"))
        .await
        .expect(200)
        .body;
    assert_eq!(payload["method"], "POST");
    assert_eq!(payload["path"], "extra/path");
    assert_eq!(payload["query"], json!([["x", "1"], ["y", "a b"]]));
    assert!(
        payload["headers"].to_string().contains("x-github-event"),
        "{payload}"
    );
    assert_eq!(payload["body"], String::from_utf8(event.body).unwrap());

    // Logs of that execution (the zendesk component logs its calls).
    let logs = client
        .get(&format!("/v1/executions/{execution_id}/logs"))
        .await
        .expect(200)
        .body;
    assert!(logs["items"].is_array(), "{logs}");

    // Listing, filtering and paging.
    let forged = github.open_issue(REPO, 8, "Forged", "x", "m", "wrong");
    deliver(&url, &forged.headers, forged.body)
        .await
        .expect(202);
    let listed = client
        .get(&format!("/v1/executions?instanceId={id}&limit=1"))
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let cursor = listed["nextCursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let page = client
        .get(&format!(
            "/v1/executions?instanceId={id}&limit=1&cursor={cursor}"
        ))
        .await
        .expect(200)
        .body;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_ne!(page["items"][0]["id"], listed["items"][0]["id"]);
    client.get("/v1/executions?status=bogus").await.expect(400);
    client
        .get("/v1/executions?since=yesterday")
        .await
        .expect(400);

    // Another tenant sees none of it.
    other.get(&format!("/v1/instances/{id}")).await.expect(404);
    other
        .get(&format!("/v1/executions/{execution_id}"))
        .await
        .expect(404);
    other
        .get(&format!("/v1/executions/{execution_id}/payload"))
        .await
        .expect(404);
    assert_eq!(
        other.get("/v1/executions").await.expect(200).body["items"],
        json!([])
    );

    // Unknown tokens, oversized bodies, disabled instances.
    deliver(
        &format!("{}/webhooks/{}", server.url, "0".repeat(64)),
        &[],
        b"{}".to_vec(),
    )
    .await
    .expect(404);
    deliver(&url, &[], vec![b'x'; 11 << 20]).await.expect(413);
    client
        .patch(&format!("/v1/instances/{id}"), &json!({"enabled": false}))
        .await
        .expect(200);
    let disabled = deliver(&url, &[], b"{}".to_vec()).await.expect(409);
    assert_eq!(disabled.body["error"]["code"], "instance-disabled");
    client
        .patch(&format!("/v1/instances/{id}"), &json!({"enabled": true}))
        .await
        .expect(200);

    // A flow API key, when set, is required.
    client
        .patch(
            &format!("/v1/instances/{id}"),
            &json!({"flows": {"githubEvents": {"apiKeys": ["flow-key-1"]}}}),
        )
        .await
        .expect(200);
    let event = github.open_issue(REPO, 9, "Keyed", "b", "octocat", GITHUB_SECRET);
    deliver(&url, &event.headers, event.body.clone())
        .await
        .expect(401);
    let mut keyed = event.headers.clone();
    keyed.push(("api-key".into(), "flow-key-1".into()));
    deliver(&url, &keyed, event.body).await.expect(202);

    // Invalid deploys say what to fix.
    let mut bad = deploy_body(&customer, &github, &zendesk);
    bad["config"]["nope"] = json!(1);
    let reply = client.post("/v1/instances", &bad).await.expect(400);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown config variable `nope`")
    );
    let mut bad = deploy_body(&customer, &github, &zendesk);
    bad["allowedHosts"] = json!(["not a rule"]);
    client.post("/v1/instances", &bad).await.expect(400);
    client
        .post("/v1/instances", &json!({"customerId": customer}))
        .await
        .expect(400);

    // Removal runs the remove hooks and the webhook stops answering.
    client
        .delete(&format!("/v1/instances/{id}"))
        .await
        .expect(200);
    assert!(github.hooks().is_empty());
    deliver(&url, &[], b"{}".to_vec()).await.expect(404);
    client.get(&format!("/v1/instances/{id}")).await.expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_responses_come_from_the_last_step() {
    let server = Server::start();
    let client = server.tenant("Acme");
    client.upload_example("hello").await;
    let definition = json!({
        "definitionVersion": 1,
        "name": "Responder",
        "components": {"hello": {"version": 1}},
        "flows": [
            {"key": "respond", "steps": [{"key": "answer", "action": "hello.respond",
                "inputs": {"status": 201, "body": {"type": "reference", "value": "trigger.results.body.text"}, "headers": {"type": "value", "value": [["x-made-by", "sluice"]]}}}]},
            {"key": "failing", "steps": [{"key": "boom", "action": "hello.fail", "inputs": {"kind": "fatal", "message": "nope"}}]},
        ],
    });
    let reply = client
        .post_bytes(
            "/v1/integrations/responder/versions",
            "application/json",
            serde_json::to_vec(&definition).unwrap(),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let customer = client
        .post("/v1/customers", &json!({"name": "C"}))
        .await
        .expect(201)
        .body;
    let instance = client
        .post(
            "/v1/instances",
            &json!({"customerId": customer["id"], "integration": "responder", "flows": {"respond": {"synchronous": true}}}),
        )
        .await
        .expect(201)
        .body;
    let reply: Reply = deliver(
        &webhook_url(&instance, "respond"),
        &[("content-type".into(), "application/json".into())],
        br#"{"text": "hello there"}"#.to_vec(),
    )
    .await
    .expect(201);
    assert_eq!(reply.text, "hello there");
    assert_eq!(reply.headers["x-made-by"], "sluice");
    assert_eq!(reply.headers["content-type"], "text/plain");
    assert!(reply.headers.contains_key("sluice-execution-id"));

    let reply = deliver(
        &webhook_url(&instance, "failing"),
        &[("sluice-synchronous".into(), "true".into())],
        b"{}".to_vec(),
    )
    .await
    .expect(500);
    assert_eq!(reply.body["error"]["code"], "execution-failed");
    assert_eq!(reply.body["error"]["step"], "boom");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_and_remove_flows_and_synchronous_flows() {
    let server = Server::start();
    let client = server.tenant("Acme");
    client.upload_example("hello").await;
    let definition = r#"
definitionVersion: 1
name: Lifecycle
components:
  hello: {version: 1}
flows:
  - key: setup
    on: instanceDeploy
    steps:
      - {key: mark, action: hello.remember, inputs: {scope: instance, key: setup, value: {type: value, value: {done: true}}}}
  - key: teardown
    on: instanceRemove
    steps:
      - {key: note, action: hello.echo, inputs: {bye: true}}
  - key: ask
    synchronous: true
    steps:
      - {key: read, action: hello.recall, inputs: {scope: instance, key: setup}}
"#;
    let reply = client
        .post_bytes(
            "/v1/integrations/lifecycle/versions",
            "application/yaml",
            definition.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let customer = client
        .post("/v1/customers", &json!({"name": "C"}))
        .await
        .expect(201)
        .body;
    let instance = client
        .post(
            "/v1/instances",
            &json!({"customerId": customer["id"], "integration": "lifecycle"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(instance["status"], "deployed", "{instance}");
    let hooks = instance["hooks"].as_array().unwrap();
    assert!(
        hooks.iter().any(|hook| hook["flow"] == "setup"
            && hook["hook"] == "deploy-flow"
            && hook["status"] == "completed"),
        "{instance}"
    );
    // Management flows have no webhook.
    let flows: Vec<&str> = instance["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|flow| flow["key"].as_str().unwrap())
        .collect();
    assert_eq!(flows, ["ask"]);

    // `ask` is synchronous by definition: no header needed; it reads what `setup` wrote.
    let reply = deliver(&webhook_url(&instance, "ask"), &[], b"{}".to_vec())
        .await
        .expect(200);
    assert_eq!(reply.body, json!({"value": {"done": true}}));

    let id = instance["id"].as_str().unwrap();
    let removed = client
        .delete(&format!("/v1/instances/{id}"))
        .await
        .expect(200)
        .body;
    assert!(
        removed["hooks"].to_string().contains("remove-flow"),
        "{removed}"
    );
    // The executions of the management flows stay for the record.
    let listed = client
        .get(&format!("/v1/executions?instanceId={id}&flow=teardown"))
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"][0]["status"], "succeeded", "{listed}");
    let listed = client
        .get(&format!("/v1/executions?instanceId={id}&flow=setup"))
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_body_does_not_poison_the_connection() {
    let server = Server::start();
    let client = server.tenant("Acme");
    let mut intruder = client.clone();
    intruder.key = "sk_wrong".into();
    // Large enough not to be read along with the headers; refused before it is read.
    let big = json!({"name": "x".repeat(200_000)});
    for _ in 0..3 {
        let reply = intruder.post("/v1/customers", &big).await.expect(401);
        assert_eq!(reply.headers["connection"], "close");
        // The same pooled client goes on working.
        client.get("/v1/customers").await.expect(200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_logs_and_time_filters() {
    let server = Server::start();
    let client = server.tenant("Acme");
    client.upload_example("hello").await;
    let publish = |definition: Value| {
        let client = client.clone();
        async move {
            client
                .post_bytes(
                    "/v1/integrations/echoes/versions",
                    "application/json",
                    serde_json::to_vec(&definition).unwrap(),
                )
                .await
        }
    };
    let v1 = json!({"definitionVersion": 1, "name": "Echoes", "components": {"hello": {"version": 1}},
        "flows": [{"key": "one", "steps": [{"key": "e", "action": "hello.echo", "inputs": {"n": 1}}]},
                  {"key": "gone", "steps": [{"key": "e", "action": "hello.echo", "inputs": {"n": 2}}]}]});
    assert_eq!(publish(v1).await.status, 201);
    let v2 = json!({"definitionVersion": 1, "name": "Echoes", "components": {"hello": {"version": 1}},
        "flows": [{"key": "one", "steps": [{"key": "e", "action": "hello.echo", "inputs": {"n": 10}}]},
                  {"key": "new", "steps": [{"key": "e", "action": "hello.echo", "inputs": {"n": 3}}]}]});
    assert_eq!(publish(v2).await.body["version"], 2);
    let customer = client
        .post("/v1/customers", &json!({"name": "C"}))
        .await
        .expect(201)
        .body;
    let instance = client
        .post(
            "/v1/instances",
            &json!({"customerId": customer["id"], "integration": "echoes", "version": 1}),
        )
        .await
        .expect(201)
        .body;
    let id = instance["id"].as_str().unwrap();
    let one = webhook_url(&instance, "one");
    let gone = webhook_url(&instance, "gone");

    // Logs: the echo action logs one info line; level filters and paging work.
    let reply = deliver(
        &one,
        &[("sluice-synchronous".into(), "true".into())],
        b"{}".to_vec(),
    )
    .await
    .expect(200);
    assert_eq!(reply.body, json!({"n": 1}));
    let execution = reply.headers["sluice-execution-id"]
        .to_str()
        .unwrap()
        .to_string();
    let logs = client
        .get(&format!("/v1/executions/{execution}/logs"))
        .await
        .expect(200)
        .body;
    assert_eq!(logs["items"][0]["message"], "echo", "{logs}");
    assert_eq!(logs["items"][0]["level"], "info");
    assert_eq!(logs["items"][0]["step"], "e");
    let errors_only = client
        .get(&format!("/v1/executions/{execution}/logs?level=error"))
        .await
        .expect(200)
        .body;
    assert_eq!(errors_only["items"], json!([]));
    let after = client
        .get(&format!("/v1/executions/{execution}/logs?after=1"))
        .await
        .expect(200)
        .body;
    assert_eq!(after["items"], json!([]));
    client
        .get(&format!("/v1/executions/{execution}/logs?level=loud"))
        .await
        .expect(400);

    // Time filters.
    let future = client
        .get("/v1/executions?since=2999-01-01T00:00:00Z")
        .await
        .expect(200)
        .body;
    assert_eq!(future["items"], json!([]));
    let past = client
        .get("/v1/executions?until=2999-01-01T00:00:00Z")
        .await
        .expect(200)
        .body;
    assert_eq!(past["items"].as_array().unwrap().len(), 1);

    // Upgrade: the kept flow keeps its URL and runs the new version; the removed flow's
    // URL stops answering; the new flow gets one.
    let upgraded = client
        .post(
            &format!("/v1/instances/{id}/upgrade"),
            &json!({"version": 2}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(upgraded["integration"]["version"], 2);
    assert_eq!(webhook_url(&upgraded, "one"), one);
    let reply = deliver(
        &one,
        &[("sluice-synchronous".into(), "true".into())],
        b"{}".to_vec(),
    )
    .await
    .expect(200);
    assert_eq!(reply.body, json!({"n": 10}));
    deliver(&gone, &[], b"{}".to_vec()).await.expect(404);
    let new = webhook_url(&upgraded, "new");
    deliver(&new, &[], b"{}".to_vec()).await.expect(202);
    client
        .post(
            &format!("/v1/instances/{id}/upgrade"),
            &json!({"version": 9}),
        )
        .await
        .expect(404);
}
