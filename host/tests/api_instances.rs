//! Instances, webhooks and executions over HTTP against a real `sluice serve`: the
//! seed's GitHub-to-Zendesk sync deployed as an instance and driven through its
//! webhook URLs by the shared scenario, plus asynchronous deliveries, the executions
//! API, API keys, disabled instances and tenant isolation.

mod support;

use std::sync::Mutex;

use serde_json::{Value, json};
use sluice_fakes::scenario::{GITHUB_SECRET, REPO, SyncDriver, run_sync_scenario};
use sluice_fakes::{FakeGithub, FakeZendesk, WebhookEvent};
use support::{Client, Reply, Server, deliver, webhook_url};

const GITHUB_TOKEN: &str = "gh-token";
const ZENDESK_TOKEN: &str = "zd-token";

/// Uploads the sync's components and integration, creates a customer; returns the
/// customer id.
async fn publish_sync(client: &Client) -> String {
    for name in ["github", "zendesk", "text"] {
        client.upload_example(name).await;
    }
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
    assert!(reply.status == 201 || reply.status == 200, "{}", reply.text);
    let customer = client
        .post(
            "/v1/customers",
            &json!({"name": "Widgets Inc", "externalId": "widgets"}),
        )
        .await
        .expect(201);
    customer.body["id"].as_str().unwrap().to_string()
}

fn deploy_body(customer: &str, github: &FakeGithub, zendesk: &FakeZendesk) -> Value {
    json!({
        "customerId": customer,
        "integration": "github-zendesk",
        "name": "Widgets sync",
        "config": {"githubRepository": REPO, "githubWebhookSecret": GITHUB_SECRET},
        "connections": {
            "github": {"kind": "oauth2", "fields": {"apiBaseUrl": github.url()}, "token": {"accessToken": GITHUB_TOKEN}},
            "zendesk": {"kind": "oauth2", "fields": {"baseUrl": zendesk.url()}, "token": {"accessToken": ZENDESK_TOKEN}},
        },
        "allowedHosts": [github.url(), zendesk.url()],
    })
}

/// Drives the deployed instance through HTTP only: the API to deploy and remove, the
/// webhook URLs (synchronously, so each delivery has finished when it returns).
struct HttpDriver<'a> {
    client: &'a Client,
    deploy: Value,
    instance: Mutex<Option<Value>>,
}

impl HttpDriver<'_> {
    fn instance(&self) -> Value {
        self.instance.lock().unwrap().clone().expect("deployed")
    }

    async fn send(&self, flow: &str, event: WebhookEvent) -> Result<(), String> {
        let mut headers = event.headers.clone();
        headers.push(("sluice-synchronous".into(), "true".into()));
        let reply = deliver(&webhook_url(&self.instance(), flow), &headers, event.body).await;
        if reply.headers.get("sluice-execution-id").is_none() {
            return Err(format!(
                "no execution id header: {} {}",
                reply.status, reply.text
            ));
        }
        if reply.status >= 500 || reply.body["error"]["code"] == "execution-failed" {
            return Err(format!("{}: {}", reply.status, reply.text));
        }
        Ok(())
    }
}

impl SyncDriver for HttpDriver<'_> {
    async fn deploy(&self) -> Result<(), String> {
        let reply = self.client.post("/v1/instances", &self.deploy).await;
        if reply.status != 201 || reply.body["status"] != "deployed" {
            return Err(format!("{}: {}", reply.status, reply.text));
        }
        *self.instance.lock().unwrap() = Some(reply.body);
        Ok(())
    }

    async fn github(&self, event: WebhookEvent) -> Result<(), String> {
        self.send("githubEvents", event).await
    }

    async fn zendesk(&self, event: WebhookEvent) -> Result<(), String> {
        self.send("zendeskEvents", event).await
    }

    async fn remove(&self) -> Result<(), String> {
        let id = self.instance()["id"].as_str().unwrap().to_string();
        let reply = self.client.delete(&format!("/v1/instances/{id}")).await;
        if reply.status != 200 {
            return Err(format!("{}: {}", reply.status, reply.text));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_runs_as_a_deployed_instance_over_http() {
    let server = Server::start();
    let client = server.tenant("Acme");
    let customer = publish_sync(&client).await;
    let github = FakeGithub::start(GITHUB_TOKEN).await;
    github.add_repo(REPO);
    let zendesk = FakeZendesk::start(ZENDESK_TOKEN).await;
    let driver = HttpDriver {
        client: &client,
        deploy: deploy_body(&customer, &github, &zendesk),
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
