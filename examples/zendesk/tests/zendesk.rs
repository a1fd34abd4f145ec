//! The `zendesk` component built for wasm32-wasip2 and run through the runtime's test
//! harness against the fake Zendesk: ticket actions, error kinds, the `ticketEvent`
//! trigger's signature checks and secret cache, and its idempotent instance hooks.
//!
//! Every test runs against both twins: the Rust component (`examples/zendesk`) and its
//! TypeScript rewrite on `@sluice/sdk` (`examples/zendesk-ts`, built with npm and
//! componentize-js), and their manifests must be equal.

use serde_json::{Value, json};
use sluice_fakes::zendesk::sign;
use sluice_fakes::{FakeZendesk, WebhookEvent};
use std::path::PathBuf;
use std::sync::OnceLock;

use sluice_runtime::guest_build::example;
use sluice_runtime::guest_build::js::js_example;
use sluice_runtime::harness::{Harness, Run, Scope};
use sluice_runtime::{Connection, Data, GuestErrorKind, HttpRequest, OAuthToken, TriggerOutcome};

const TOKEN: &str = "zd-token";
const FLOW: &str = "Zendesk events";
const FLOW_URL: &str = "https://hooks.sluice.test/zendesk";
const WEBHOOK_KEY: &str = "zendesk:webhook:Zendesk events";

/// One of the two implementations of the connector.
#[derive(Debug, Clone, Copy)]
enum Twin {
    Rust,
    TypeScript,
}

const TWINS: [Twin; 2] = [Twin::Rust, Twin::TypeScript];

impl Twin {
    fn wasm(self) -> PathBuf {
        match self {
            Twin::Rust => example("zendesk"),
            Twin::TypeScript => js_example("zendesk-ts"),
        }
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The built component in a fresh harness: no state, connections or config. Each
/// twin is loaded (and compiled) once per process: the TypeScript one embeds a
/// JavaScript engine and takes seconds to compile.
fn component(twin: Twin) -> Harness {
    static LOADED: [OnceLock<Harness>; 2] = [OnceLock::new(), OnceLock::new()];
    eprintln!("--- the {twin:?} component");
    LOADED[twin as usize]
        .get_or_init(|| Harness::from_file(twin.wasm()).unwrap_or_else(|e| panic!("{e}")))
        .fresh()
}

fn connection(base_url: &str, token: &str) -> Connection {
    Connection {
        key: "zendesk".into(),
        kind: "oauth2".into(),
        fields: json!({"baseUrl": base_url}),
        token: Some(OAuthToken {
            access_token: token.into(),
            token_type: "bearer".into(),
            expires_at_ms: None,
            scopes: vec!["read".into(), "write".into()],
        }),
    }
}

/// A fake Zendesk and the component connected to it, running as flow [`FLOW`] of an
/// instance with two flows.
async fn setup(twin: Twin) -> (FakeZendesk, Harness) {
    let zendesk = FakeZendesk::start(TOKEN).await;
    let harness = component(twin)
        .with_connection(connection(&zendesk.url(), TOKEN))
        .allow_host(&zendesk.url())
        .unwrap()
        .with_context(|c| {
            c.flow_name = FLOW.into();
            c.webhook_urls = vec![
                (
                    "GitHub events".into(),
                    "https://hooks.sluice.test/github".into(),
                ),
                (FLOW.into(), FLOW_URL.into()),
            ];
        });
    (zendesk, harness)
}

fn request(event: WebhookEvent) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        headers: event.headers,
        body: event.body,
        ..HttpRequest::default()
    }
}

fn accepted(run: &Run) -> (Value, Option<String>) {
    match run.trigger_outcome().unwrap() {
        TriggerOutcome::Accept {
            payload: Data::Json(text),
            branch,
            ..
        } => (serde_json::from_str(text).unwrap(), branch.clone()),
        other => panic!("expected an accepted JSON payload, got {other:?}"),
    }
}

fn responded(run: &Run) -> (u16, String) {
    match run.trigger_outcome().unwrap() {
        TriggerOutcome::Respond { response } => (
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        ),
        other => panic!("expected a response without a run, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_actions() {
    for twin in TWINS {
        ticket_actions_of(twin).await;
    }
}

async fn ticket_actions_of(twin: Twin) {
    let (zendesk, harness) = setup(twin).await;
    let run = harness
        .action(
            "createTicket",
            json!({"subject": "Widget explodes", "body": "From GitHub.", "externalId": "gh-13"}),
        )
        .await
        .unwrap();
    let ticket = run.json().unwrap();
    assert_eq!(ticket["subject"], "Widget explodes");
    assert_eq!(ticket["external_id"], "gh-13");
    let id = ticket["id"].as_u64().unwrap();
    assert_eq!(zendesk.comments(id)[0].body, "From GitHub.");

    let run = harness
        .action("findTicketByExternalId", json!({"externalId": "gh-13"}))
        .await
        .unwrap();
    assert_eq!(run.json().unwrap(), ticket);
    let run = harness
        .action("findTicketByExternalId", json!({"externalId": "gh-14"}))
        .await
        .unwrap();
    assert_eq!(run.json().unwrap(), Value::Null);

    harness
        .action(
            "addComment",
            json!({"ticketId": id, "body": "Public reply"}),
        )
        .await
        .unwrap()
        .json()
        .unwrap();
    // Event payloads carry ticket ids as strings: accepted too.
    harness
        .action(
            "addComment",
            json!({"ticketId": id.to_string(), "body": "Note", "public": false}),
        )
        .await
        .unwrap()
        .json()
        .unwrap();
    let comments = zendesk.comments(id);
    assert_eq!(
        comments
            .iter()
            .map(|c| (c.body.as_str(), c.public))
            .collect::<Vec<_>>(),
        [
            ("From GitHub.", true),
            ("Public reply", true),
            ("Note", false)
        ]
    );

    let run = harness
        .action("closeTicket", json!({"ticketId": id}))
        .await
        .unwrap();
    assert_eq!(run.json().unwrap()["status"], "closed");
    assert_eq!(
        zendesk.ticket_by_external_id("gh-13").unwrap().status,
        "closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_the_right_kinds() {
    for twin in TWINS {
        errors_have_the_right_kinds_of(twin).await;
    }
}

async fn errors_have_the_right_kinds_of(twin: Twin) {
    let (zendesk, harness) = setup(twin).await;
    let kind = |run: Run| run.guest_error().unwrap().clone();

    let error = kind(
        harness
            .clone()
            .with_connection(connection(&zendesk.url(), "expired"))
            .action("findTicketByExternalId", json!({"externalId": "gh-1"}))
            .await
            .unwrap(),
    );
    assert_eq!(error.kind, GuestErrorKind::Connection, "{}", error.message);
    assert_eq!(error.connection.as_deref(), Some("zendesk"));

    let error = kind(
        component(twin)
            .action("closeTicket", json!({"ticketId": 1}))
            .await
            .unwrap(),
    );
    assert_eq!(error.kind, GuestErrorKind::Connection);

    let error = kind(
        harness
            .clone()
            .with_connection(connection("acme.zendesk.com", TOKEN))
            .action("closeTicket", json!({"ticketId": 1}))
            .await
            .unwrap(),
    );
    assert_eq!(error.kind, GuestErrorKind::Connection);
    assert!(error.message.contains("baseUrl"), "{}", error.message);

    // A missing ticket: fatal, saying what was asked.
    let error = kind(
        harness
            .action("addComment", json!({"ticketId": 999, "body": "Hello?"}))
            .await
            .unwrap(),
    );
    assert_eq!(error.kind, GuestErrorKind::Fatal);
    assert!(
        error.message.starts_with("commenting on ticket 999: PUT"),
        "{}",
        error.message
    );
    assert!(error.message.contains("HTTP 404"), "{}", error.message);

    for (action, input) in [
        ("closeTicket", json!({"ticketId": "twelve"})),
        ("closeTicket", json!({})),
        ("addComment", json!({"ticketId": 1, "body": ""})),
        (
            "createTicket",
            json!({"subject": "No description", "body": " "}),
        ),
    ] {
        let error = kind(harness.action(action, input.clone()).await.unwrap());
        assert_eq!(error.kind, GuestErrorKind::InvalidInput, "{action} {input}");
    }
    assert!(zendesk.tickets().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_verifies_signatures_with_a_cached_secret() {
    for twin in TWINS {
        trigger_verifies_signatures_with_a_cached_secret_of(twin).await;
    }
}

async fn trigger_verifies_signatures_with_a_cached_secret_of(twin: Twin) {
    let (zendesk, harness) = setup(twin).await;
    harness.deploy("ticketEvent", json!({})).await.unwrap();
    let webhook = zendesk.webhooks()[0].clone();
    let ticket = harness
        .action(
            "createTicket",
            json!({"subject": "S", "body": "D", "externalId": "gh-1"}),
        )
        .await
        .unwrap()
        .json()
        .unwrap()["id"]
        .as_u64()
        .unwrap();

    // The first delivery reads the signing secret through the connection...
    let event = zendesk
        .agent_comments(ticket, "We are on it.", "Sam Agent")
        .unwrap();
    let body: Value = serde_json::from_slice(&event.body).unwrap();
    let run = harness
        .trigger("ticketEvent", request(event), json!({}))
        .await
        .unwrap();
    let (payload, branch) = accepted(&run);
    assert_eq!(payload, body);
    assert_eq!(branch.as_deref(), Some("Comment Added"));
    assert_eq!(zendesk.signing_secret_reads(), 1);
    let cache_key = format!("zendesk:signingSecret:{}", webhook.id);
    assert_eq!(
        harness.state(Scope::Instance, &cache_key).unwrap()["secret"],
        webhook.secret
    );

    // ...later ones verify with the cached secret, even without a connection.
    let event = zendesk
        .agent_comments(ticket, "Fixed in 2.1.", "Sam Agent")
        .unwrap();
    let offline = harness
        .clone()
        .with_connection(connection(&zendesk.url(), "expired"));
    let run = offline
        .trigger("ticketEvent", request(event.clone()), json!({}))
        .await
        .unwrap();
    assert_eq!(accepted(&run).1.as_deref(), Some("Comment Added"));
    assert_eq!(zendesk.signing_secret_reads(), 1);

    // Other event types are accepted on the `Other` branch.
    let status = json!({"type": "zen:event-type:ticket.status_changed", "detail": {"id": ticket.to_string()}});
    let status_body = status.to_string().into_bytes();
    let timestamp = "2026-11-23T12:00:00Z";
    let signed = WebhookEvent {
        headers: vec![
            ("x-zendesk-webhook-id".into(), webhook.id.clone()),
            (
                "x-zendesk-webhook-signature-timestamp".into(),
                timestamp.into(),
            ),
            (
                "x-zendesk-webhook-signature".into(),
                sign(&webhook.secret, timestamp, &status_body),
            ),
        ],
        body: status_body,
    };
    let run = harness
        .trigger("ticketEvent", request(signed.clone()), json!({}))
        .await
        .unwrap();
    assert_eq!(accepted(&run).1.as_deref(), Some("Other"));

    // Forgeries: 401, and a fresh cached secret is not re-read for them.
    let tampered = event
        .clone()
        .tampered(br#"{"type":"zen:event-type:ticket.comment_added"}"#);
    let run = harness
        .trigger("ticketEvent", request(tampered), json!({}))
        .await
        .unwrap();
    assert_eq!(responded(&run), (401, "invalid signature".to_string()));
    assert_eq!(zendesk.signing_secret_reads(), 1);
    let mut other_timestamp = request(event.clone());
    for (name, value) in &mut other_timestamp.headers {
        if name == "x-zendesk-webhook-signature-timestamp" {
            *value = "2026-11-23T12:00:01Z".into();
        }
    }
    let run = harness
        .trigger("ticketEvent", other_timestamp, json!({}))
        .await
        .unwrap();
    assert_eq!(responded(&run).0, 401);
    for missing in [
        "x-zendesk-webhook-id",
        "x-zendesk-webhook-signature",
        "x-zendesk-webhook-signature-timestamp",
    ] {
        let mut unsigned = request(event.clone());
        unsigned.headers.retain(|(name, _)| name != missing);
        let run = harness
            .trigger("ticketEvent", unsigned, json!({}))
            .await
            .unwrap();
        assert_eq!(
            responded(&run),
            (401, "missing Zendesk webhook signature headers".to_string()),
            "{missing}"
        );
    }
    let with_id = |id: &str| {
        let mut forged = request(signed.clone());
        for (name, value) in &mut forged.headers {
            if name == "x-zendesk-webhook-id" {
                *value = id.into();
            }
        }
        forged
    };
    let run = harness
        .trigger("ticketEvent", with_id("01NOSUCHHOOK"), json!({}))
        .await
        .unwrap();
    assert_eq!(responded(&run), (401, "unknown webhook".to_string()));
    assert_eq!(
        harness.state(Scope::Instance, "zendesk:signingSecret:01NOSUCHHOOK"),
        None
    );
    let run = harness
        .trigger("ticketEvent", with_id("../tickets"), json!({}))
        .await
        .unwrap();
    assert_eq!(responded(&run), (401, "invalid webhook id".to_string()));

    // The secret is reset in Zendesk: refused while the cached one is fresh, then
    // re-read once it is older than the refresh interval.
    zendesk.reset_signing_secret(&webhook.id).unwrap();
    let event = zendesk
        .agent_comments(ticket, "After the reset.", "Sam Agent")
        .unwrap();
    let run = harness
        .trigger("ticketEvent", request(event.clone()), json!({}))
        .await
        .unwrap();
    assert_eq!(responded(&run).0, 401);
    let later = harness.clone().with_context(|c| c.started_at_ms = 120_000);
    let run = later
        .trigger("ticketEvent", request(event), json!({}))
        .await
        .unwrap();
    assert_eq!(accepted(&run).1.as_deref(), Some("Comment Added"));
    assert_eq!(zendesk.signing_secret_reads(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_hooks_are_idempotent() {
    for twin in TWINS {
        instance_hooks_are_idempotent_of(twin).await;
    }
}

async fn instance_hooks_are_idempotent_of(twin: Twin) {
    let (zendesk, harness) = setup(twin).await;
    let foreign = zendesk.add_webhook("Slack", "https://slack.example.com/zendesk");

    let run = harness.deploy("ticketEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    let ours: Vec<_> = zendesk
        .webhooks()
        .into_iter()
        .filter(|w| w.endpoint == FLOW_URL)
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].name, "Sluice: Zendesk events (test-instance)");
    let id = ours[0].id.clone();
    assert_eq!(
        harness.state(Scope::Instance, WEBHOOK_KEY),
        Some(json!({"id": id, "endpoint": FLOW_URL}))
    );

    // Again, and with a stray copy of our webhook: still exactly one, the same one.
    harness.deploy("ticketEvent", json!({})).await.unwrap();
    zendesk.add_webhook("copy", FLOW_URL);
    let run = harness.deploy("ticketEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    let ids: Vec<String> = zendesk.webhooks().into_iter().map(|w| w.id).collect();
    assert_eq!(ids, [foreign.id.clone(), id.clone()]);

    // Remove: ours goes (twice is fine), the foreign one stays.
    let run = harness.remove("ticketEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
    assert_eq!(zendesk.webhooks(), vec![foreign.clone()]);
    assert_eq!(harness.state(Scope::Instance, WEBHOOK_KEY), None);
    let run = harness.remove("ticketEvent", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);

    // The webhook URL of the flow changes between deploys: the old webhook goes.
    harness.deploy("ticketEvent", json!({})).await.unwrap();
    let moved = harness.clone().with_context(|c| {
        c.webhook_urls = vec![(FLOW.into(), "https://hooks.sluice.test/zendesk-v2".into())];
    });
    moved.deploy("ticketEvent", json!({})).await.unwrap();
    let endpoints: Vec<String> = zendesk.webhooks().into_iter().map(|w| w.endpoint).collect();
    assert_eq!(
        endpoints,
        [
            foreign.endpoint.as_str(),
            "https://hooks.sluice.test/zendesk-v2"
        ]
    );
    moved.remove("ticketEvent", json!({})).await.unwrap();
    assert_eq!(zendesk.webhooks(), vec![foreign.clone()]);

    // The action deletes every webhook of the instance's flows, and only those.
    zendesk.add_webhook("a", FLOW_URL);
    zendesk.add_webhook("b", "https://hooks.sluice.test/github");
    let run = harness
        .action("deleteInstanceWebhooks", json!({}))
        .await
        .unwrap();
    assert_eq!(run.json().unwrap()["deleted"].as_array().unwrap().len(), 2);
    assert_eq!(zendesk.webhooks(), vec![foreign]);
}

#[tokio::test]
async fn manifest() {
    for twin in TWINS {
        manifest_of(twin).await;
    }
}

/// The twins declare the same component: equal manifests, schemas included.
#[tokio::test]
async fn twins_have_equal_manifests() {
    let rust = component(Twin::Rust).manifest().await.unwrap();
    let typescript = component(Twin::TypeScript).manifest().await.unwrap();
    assert_eq!(rust, typescript);
}

async fn manifest_of(twin: Twin) {
    let manifest = component(twin).manifest().await.unwrap();
    assert_eq!(manifest["key"], "zendesk");
    let actions: Vec<&String> = manifest["actions"].as_object().unwrap().keys().collect();
    assert_eq!(
        actions,
        [
            "addComment",
            "closeTicket",
            "createTicket",
            "deleteInstanceWebhooks",
            "findTicketByExternalId"
        ]
    );
    let trigger = &manifest["triggers"]["ticketEvent"];
    assert_eq!(
        trigger["staticBranchNames"],
        json!(["Comment Added", "Other"])
    );
    assert_eq!(trigger["hasInstanceHooks"], true);
    assert_eq!(manifest["connections"][0]["kind"], "oauth2");
}
