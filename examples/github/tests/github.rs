//! The `github` component built for wasm32-wasip2 and run through the runtime's test
//! harness against the fake GitHub: issue and webhook actions, error kinds, the signed
//! `issueEvent` trigger, its idempotent instance hooks, and the repository picklist.

use serde_json::{Value, json};
use sluice_fakes::FakeGithub;
use sluice_fakes::WebhookEvent;
use sluice_fakes::github::sign;
use sluice_runtime::guest_build::example;
use sluice_runtime::harness::{Harness, Scope};
use sluice_runtime::{Connection, Data, GuestErrorKind, HttpRequest, OAuthToken, TriggerOutcome};

const TOKEN: &str = "gh-token";
const REPO: &str = "acme/widgets";
const SECRET: &str = "hook-secret";
const FLOW: &str = "GitHub events";
const FLOW_URL: &str = "https://hooks.sluice.test/github";

/// The built component in a new harness (each call loads and compiles it anew).
fn component() -> Harness {
    let path = example("github").unwrap_or_else(|e| panic!("{e}"));
    Harness::from_file(path).unwrap_or_else(|e| panic!("{e}"))
}

fn connection(api: &str, token: &str) -> Connection {
    Connection {
        key: "github".into(),
        kind: "oauth2".into(),
        fields: json!({"apiBaseUrl": api}),
        token: Some(OAuthToken {
            access_token: token.into(),
            token_type: "bearer".into(),
            expires_at_ms: None,
            scopes: vec!["repo".into(), "admin:repo_hook".into()],
        }),
    }
}

/// A fake GitHub with [`REPO`], and the component connected to it, configured for
/// [`REPO`] and [`SECRET`], running as flow [`FLOW`] of an instance with two flows.
async fn setup() -> (FakeGithub, Harness) {
    let github = FakeGithub::start(TOKEN).await;
    github.add_repo(REPO);
    let harness = component()
        .with_connection(connection(&github.url(), TOKEN))
        .allow_host(&github.url())
        .unwrap()
        .with_config("githubRepository", json!(REPO))
        .with_config("githubWebhookSecret", json!(SECRET))
        .with_context(|c| {
            c.flow_name = FLOW.into();
            c.webhook_urls = vec![
                (FLOW.into(), FLOW_URL.into()),
                (
                    "Zendesk events".into(),
                    "https://hooks.sluice.test/zendesk".into(),
                ),
            ];
        });
    (github, harness)
}

fn request(event: WebhookEvent) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        headers: event.headers,
        body: event.body,
        ..HttpRequest::default()
    }
}

/// A delivery of `event` with `body`, signed with `secret`.
fn delivery(event: &str, body: &Value, secret: &str) -> HttpRequest {
    let body = body.to_string().into_bytes();
    HttpRequest {
        method: "POST".into(),
        headers: vec![
            ("x-github-event".into(), event.into()),
            ("x-hub-signature-256".into(), sign(secret, &body)),
        ],
        body,
        ..HttpRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_actions() {
    let (github, harness) = setup().await;
    github.open_issue(
        REPO,
        7,
        "Widget explodes",
        "When dropped.",
        "octocat",
        SECRET,
    );

    let run = harness
        .action("getIssue", json!({"repo": REPO, "number": 7}))
        .await
        .unwrap();
    let issue = run.json().unwrap();
    assert_eq!(
        (issue["title"].as_str(), issue["state"].as_str()),
        (Some("Widget explodes"), Some("open"))
    );

    let run = harness
        .action(
            "createComment",
            json!({"repo": REPO, "number": 7, "body": "On it."}),
        )
        .await
        .unwrap();
    let comment = run.json().unwrap();
    assert_eq!(comment["body"], "On it.");
    assert_eq!(comment["user"]["login"], "sluice-bot");
    let stored = github.comments(REPO, 7);
    assert_eq!(stored.len(), 1);
    assert_eq!(json!(stored[0].id), comment["id"]);
    assert_eq!(run.messages(), vec!["commented on acme/widgets#7"]);

    let run = harness
        .action("closeIssue", json!({"repo": REPO, "number": 7}))
        .await
        .unwrap();
    assert_eq!(run.json().unwrap()["state"], "closed");
    assert_eq!(github.issue_state(REPO, 7).as_deref(), Some("closed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_the_right_kinds() {
    let (github, harness) = setup().await;

    // A token GitHub refuses: the connection is at fault.
    let run = harness
        .clone()
        .with_connection(connection(&github.url(), "revoked"))
        .action("getIssue", json!({"repo": REPO, "number": 1}))
        .await
        .unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::Connection, "{}", error.message);
    assert_eq!(error.connection.as_deref(), Some("github"));
    assert!(error.message.contains("HTTP 401"), "{}", error.message);

    // No connection at all.
    let run = component()
        .action("getIssue", json!({"repo": REPO, "number": 1}))
        .await
        .unwrap();
    assert_eq!(run.guest_error().unwrap().kind, GuestErrorKind::Connection);

    // A missing issue: fatal (retrying cannot make it exist), saying what was asked.
    let run = harness
        .action("getIssue", json!({"repo": REPO, "number": 404}))
        .await
        .unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::Fatal);
    assert!(
        error
            .message
            .starts_with("reading issue acme/widgets#404: GET"),
        "{}",
        error.message
    );
    assert!(error.message.contains("HTTP 404"), "{}", error.message);

    // A webhook on a repository the token cannot see.
    let run = harness
        .action(
            "createWebhook",
            json!({"repo": "acme/secret", "url": "https://x.test/", "secret": "s"}),
        )
        .await
        .unwrap();
    assert_eq!(run.guest_error().unwrap().kind, GuestErrorKind::Fatal);

    // Inputs that cannot work.
    for input in [
        json!({"repo": "../../user", "number": 1}),
        json!({"repo": REPO}),
        json!({"repo": REPO, "number": -1}),
    ] {
        let run = harness.action("getIssue", input.clone()).await.unwrap();
        assert_eq!(
            run.guest_error().unwrap().kind,
            GuestErrorKind::InvalidInput,
            "{input}"
        );
    }
    let run = harness
        .action(
            "createComment",
            json!({"repo": REPO, "number": 1, "body": " "}),
        )
        .await
        .unwrap();
    assert_eq!(
        run.guest_error().unwrap().kind,
        GuestErrorKind::InvalidInput
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_actions_delete_only_this_instances_hooks() {
    let (github, harness) = setup().await;
    let foreign = github.add_hook(REPO, "https://ci.example.com/hook", Some("theirs"));

    let run = harness
        .action(
            "createWebhook",
            json!({"repo": REPO, "url": FLOW_URL, "secret": "s3cret"}),
        )
        .await
        .unwrap();
    let created = run.json().unwrap();
    assert_eq!(created["config"]["url"], FLOW_URL);
    let hooks = github.hooks();
    let ours = hooks.iter().find(|hook| hook.url == FLOW_URL).unwrap();
    assert_eq!(ours.secret.as_deref(), Some("s3cret"));
    assert_eq!(ours.events, ["issues", "issue_comment"]);
    // Another flow of the same instance.
    harness
        .action(
            "createWebhook",
            json!({"repo": REPO, "url": "https://hooks.sluice.test/zendesk", "secret": "s", "events": ["push"]}),
        )
        .await
        .unwrap();

    let run = harness
        .action("listWebhooks", json!({"repo": REPO}))
        .await
        .unwrap();
    let listed = run.json().unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[0]["config"]["secret"], "********");

    let run = harness
        .action("deleteInstanceWebhooks", json!({"repo": REPO}))
        .await
        .unwrap();
    assert_eq!(run.json().unwrap()["deleted"].as_array().unwrap().len(), 2);
    assert_eq!(github.hooks(), vec![foreign]);
    let run = harness
        .action("deleteInstanceWebhooks", json!({"repo": REPO}))
        .await
        .unwrap();
    assert_eq!(run.json().unwrap(), json!({"deleted": []}));
}

fn accepted(run: &sluice_runtime::harness::Run) -> (Value, Option<String>) {
    match run.trigger_outcome().unwrap() {
        TriggerOutcome::Accept {
            payload: Data::Json(text),
            branch,
            ..
        } => (serde_json::from_str(text).unwrap(), branch.clone()),
        other => panic!("expected an accepted JSON payload, got {other:?}"),
    }
}

fn responded(run: &sluice_runtime::harness::Run) -> (u16, String) {
    match run.trigger_outcome().unwrap() {
        TriggerOutcome::Respond { response } => (
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        ),
        other => panic!("expected a response without a run, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_verifies_and_classifies_deliveries() {
    let (github, harness) = setup().await;
    let inputs = json!({});

    let opened = github.open_issue(REPO, 3, "Broken", "It is.", "octocat", SECRET);
    let body: Value = serde_json::from_slice(&opened.body).unwrap();
    let run = harness
        .trigger("issueEvent", request(opened.clone()), inputs.clone())
        .await
        .unwrap();
    let (payload, branch) = accepted(&run);
    assert_eq!(payload, body);
    assert_eq!(branch.as_deref(), Some("Issue Opened"));

    let commented = github.comment_on_issue(REPO, 3, "Me too", "hubot", SECRET);
    let run = harness
        .trigger("issueEvent", request(commented), inputs.clone())
        .await
        .unwrap();
    assert_eq!(accepted(&run).1.as_deref(), Some("Issue Commented"));

    let closed = github.close_issue(REPO, 3, "octocat", SECRET);
    let run = harness
        .trigger("issueEvent", request(closed), inputs.clone())
        .await
        .unwrap();
    assert_eq!(accepted(&run).1.as_deref(), Some("Issue Closed"));

    let reopened = delivery(
        "issues",
        &json!({"action": "reopened", "issue": {"number": 3}}),
        SECRET,
    );
    let run = harness
        .trigger("issueEvent", reopened, inputs.clone())
        .await
        .unwrap();
    assert_eq!(accepted(&run).1.as_deref(), Some("Other"));

    // GitHub's ping on hook creation is answered without running the flow.
    let ping = delivery(
        "ping",
        &json!({"zen": "Keep it logically awesome.", "hook_id": 1}),
        SECRET,
    );
    let run = harness
        .trigger("issueEvent", ping, inputs.clone())
        .await
        .unwrap();
    assert_eq!(responded(&run), (200, "pong".to_string()));

    // Forged, tampered, unsigned: 401, and the flow does not run.
    let forged = github.open_issue(REPO, 4, "Forged", "", "mallory", "wrong-secret");
    let run = harness
        .trigger("issueEvent", request(forged), inputs.clone())
        .await
        .unwrap();
    assert_eq!(responded(&run), (401, "invalid signature".to_string()));
    let genuine = github.open_issue(REPO, 5, "Fine", "", "octocat", SECRET);
    let tampered = genuine.clone().tampered(br#"{"action":"closed"}"#);
    let run = harness
        .trigger("issueEvent", request(tampered), inputs.clone())
        .await
        .unwrap();
    assert_eq!(responded(&run).0, 401);
    let mut unsigned = request(genuine.clone());
    unsigned
        .headers
        .retain(|(name, _)| name != "x-hub-signature-256");
    let run = harness
        .trigger("issueEvent", unsigned, inputs.clone())
        .await
        .unwrap();
    assert_eq!(
        responded(&run),
        (401, "missing x-hub-signature-256 signature".to_string())
    );

    // The trigger's `secret` input wins over the config variable.
    let other = github.open_issue(REPO, 6, "Other secret", "", "octocat", "input-secret");
    let run = harness
        .trigger(
            "issueEvent",
            request(other.clone()),
            json!({"secret": "input-secret"}),
        )
        .await
        .unwrap();
    assert_eq!(accepted(&run).1.as_deref(), Some("Issue Opened"));
    let run = harness
        .trigger("issueEvent", request(other), inputs.clone())
        .await
        .unwrap();
    assert_eq!(responded(&run).0, 401);

    // No secret anywhere: the instance is misconfigured.
    let run = component()
        .trigger("issueEvent", request(genuine), inputs)
        .await
        .unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::InvalidInput);
    assert!(
        error.message.contains("githubWebhookSecret"),
        "{}",
        error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_hooks_are_idempotent() {
    let (github, harness) = setup().await;
    let foreign = github.add_hook(REPO, "https://ci.example.com/hook", None);
    let key = "github:webhook:GitHub events";

    let run = harness.deploy("issueEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    let ours: Vec<_> = github
        .hooks()
        .into_iter()
        .filter(|h| h.url == FLOW_URL)
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].secret.as_deref(), Some(SECRET));
    assert_eq!(ours[0].events, ["issues", "issue_comment"]);
    let id = ours[0].id;
    assert_eq!(
        harness.state(Scope::Instance, key),
        Some(json!({"id": id, "repo": REPO, "url": FLOW_URL}))
    );

    // Again: the same hook, nothing new.
    let run = harness.deploy("issueEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    assert_eq!(github.hooks().len(), 2);
    assert_eq!(harness.state(Scope::Instance, key).unwrap()["id"], id);

    // A changed secret reaches the existing hook; a stray copy of the hook goes.
    github.add_hook(REPO, FLOW_URL, Some("stale"));
    let harness = harness.with_config("githubWebhookSecret", json!("rotated"));
    let run = harness.deploy("issueEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    let hooks = github.hooks();
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    let ours = hooks.iter().find(|h| h.url == FLOW_URL).unwrap();
    assert_eq!((ours.id, ours.secret.as_deref()), (id, Some("rotated")));

    // Remove: our hook goes, the foreign one stays; twice is fine.
    let run = harness.remove("issueEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    assert_eq!(github.hooks(), vec![foreign.clone()]);
    assert_eq!(harness.state(Scope::Instance, key), None);
    let run = harness.remove("issueEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);

    // Deploy, someone deletes the hook by hand, deploy again: a new hook.
    harness.deploy("issueEvent", json!({})).await.unwrap();
    harness
        .action("deleteInstanceWebhooks", json!({"repo": REPO}))
        .await
        .unwrap();
    let run = harness.deploy("issueEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    assert_eq!(
        github.hooks().iter().filter(|h| h.url == FLOW_URL).count(),
        1
    );
    // ...and remove tolerates the remembered hook being gone already.
    harness
        .action("deleteInstanceWebhooks", json!({"repo": REPO}))
        .await
        .unwrap();
    let run = harness.remove("issueEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    assert_eq!(github.hooks(), vec![foreign]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeploying_to_another_repository_moves_the_hook() {
    let (github, harness) = setup().await;
    github.add_repo("acme/gadgets");
    harness.deploy("issueEvent", json!({})).await.unwrap();
    let moved = harness
        .clone()
        .with_config("githubRepository", json!("acme/gadgets"));
    let run = moved.deploy("issueEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    let hooks = github.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(
        (hooks[0].repo.as_str(), hooks[0].url.as_str()),
        ("acme/gadgets", FLOW_URL)
    );
    // Remove finds the hook where the deploy put it, whatever the config says now.
    let run = harness.remove("issueEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    assert!(github.hooks().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_needs_configuration() {
    let (github, harness) = setup().await;
    // A repository the token cannot see: GitHub's 404 on hook creation.
    let run = harness
        .clone()
        .with_config("githubRepository", json!("acme/elsewhere"))
        .deploy("issueEvent", json!({}))
        .await
        .unwrap();
    assert_eq!(run.guest_error().unwrap().kind, GuestErrorKind::Fatal);
    // A flow without a webhook URL has nothing to register.
    let run = harness
        .clone()
        .with_context(|c| c.flow_name = "Nightly".into())
        .deploy("issueEvent", json!({}))
        .await
        .unwrap();
    let error = run.guest_error().unwrap();
    assert!(
        error.message.contains("no webhook URL"),
        "{}",
        error.message
    );
    assert!(github.hooks().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_picklist() {
    let (github, harness) = setup().await;
    github.add_repo("zeta/app");
    github.add_repo("Acme/alpha");
    let run = harness
        .data_source("repositories", json!({}))
        .await
        .unwrap();
    assert_eq!(
        run.data_source().unwrap(),
        json!([
            {"key": "Acme/alpha", "label": "Acme/alpha"},
            {"key": "acme/widgets", "label": "acme/widgets"},
            {"key": "zeta/app", "label": "zeta/app"},
        ])
    );
    let run = harness
        .clone()
        .with_connection(connection(&github.url(), "revoked"))
        .data_source("repositories", json!({}))
        .await
        .unwrap();
    assert_eq!(run.guest_error().unwrap().kind, GuestErrorKind::Connection);
}

#[tokio::test]
async fn manifest() {
    let manifest = component().manifest().await.unwrap();
    assert_eq!(manifest["key"], "github");
    let actions: Vec<&String> = manifest["actions"].as_object().unwrap().keys().collect();
    assert_eq!(
        actions,
        [
            "closeIssue",
            "createComment",
            "createWebhook",
            "deleteInstanceWebhooks",
            "getIssue",
            "listWebhooks"
        ]
    );
    assert_eq!(
        manifest["triggers"]["issueEvent"]["staticBranchNames"],
        json!(["Issue Opened", "Issue Commented", "Issue Closed", "Other"])
    );
    assert_eq!(
        manifest["dataSources"]["repositories"]["dataSourceType"],
        "picklist"
    );
    assert_eq!(manifest["connections"][0]["key"], "github");
}
