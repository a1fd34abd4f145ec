//! The seed's sync end to end: the `github` and `zendesk` components' triggers and
//! instance hooks, and the `github-zendesk-sync` flow invoking their actions, all
//! through the runtime's test harness against the fake services, driven by the shared
//! scenario of `sluice-fakes` (`run_sync_scenario`).

use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};
use sluice_fakes::scenario::{GITHUB_SECRET, REPO, SyncDriver, run_sync_scenario};
use sluice_fakes::{FakeGithub, FakeZendesk, WebhookEvent};
use sluice_runtime::flow;
use sluice_runtime::guest_build::example;
use sluice_runtime::harness::{Harness, Run};
use sluice_runtime::{
    Connection, GuestErrorKind, HttpRequest, OAuthToken, Outcome, TriggerOutcome,
};

const GITHUB_TOKEN: &str = "gh-token";
const ZENDESK_TOKEN: &str = "zd-token";
const GITHUB_FLOW: &str = "GitHub events";
const ZENDESK_FLOW: &str = "Zendesk events";

fn oauth(key: &str, fields: Value, token: &str) -> Connection {
    Connection {
        key: key.into(),
        kind: "oauth2".into(),
        fields,
        token: Some(OAuthToken {
            access_token: token.into(),
            token_type: "bearer".into(),
            expires_at_ms: None,
            scopes: vec![],
        }),
    }
}

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(example(name).unwrap_or_else(|e| panic!("{e}"))).unwrap()
}

/// One instance of the integration: both components (each running as its own flow's
/// trigger) and the code-native flow, sharing config, connections and allow-list.
struct Driver {
    github: Harness,
    zendesk: Harness,
    flow: Harness,
    /// Every flow run, in order.
    runs: Mutex<Vec<Run>>,
}

impl Driver {
    async fn start() -> (FakeGithub, FakeZendesk, Driver) {
        let github = FakeGithub::start(GITHUB_TOKEN).await;
        github.add_repo(REPO);
        let zendesk = FakeZendesk::start(ZENDESK_TOKEN).await;
        let (github_wasm, zendesk_wasm) = (wasm("github"), wasm("zendesk"));
        let instance = |harness: Harness| {
            harness
                .with_connection(oauth(
                    "github",
                    json!({"apiBaseUrl": github.url()}),
                    GITHUB_TOKEN,
                ))
                .with_connection(oauth(
                    "zendesk",
                    json!({"baseUrl": zendesk.url()}),
                    ZENDESK_TOKEN,
                ))
                .with_config("githubRepository", json!(REPO))
                .with_config("githubWebhookSecret", json!(GITHUB_SECRET))
                .allow_host(&github.url())
                .unwrap()
                .allow_host(&zendesk.url())
                .unwrap()
                .with_context(|c| {
                    c.webhook_urls = vec![
                        (
                            GITHUB_FLOW.into(),
                            "https://hooks.sluice.test/github".into(),
                        ),
                        (
                            ZENDESK_FLOW.into(),
                            "https://hooks.sluice.test/zendesk".into(),
                        ),
                    ];
                })
        };
        let flow = Harness::new(&wasm("github-zendesk-sync"))
            .unwrap()
            .with_component("github", &github_wasm)
            .unwrap()
            .with_component("zendesk", &zendesk_wasm)
            .unwrap();
        let driver = Driver {
            github: instance(Harness::new(&github_wasm).unwrap())
                .with_context(|c| c.flow_name = GITHUB_FLOW.into()),
            zendesk: instance(Harness::new(&zendesk_wasm).unwrap())
                .with_context(|c| c.flow_name = ZENDESK_FLOW.into()),
            flow: instance(flow),
            runs: Mutex::new(Vec::new()),
        };
        (github, zendesk, driver)
    }

    fn runs(&self) -> Vec<Run> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs `trigger` of `component` on the delivery and, when it accepts, the flow
    /// (as flow `flow_name`) with the trigger results object.
    async fn deliver(
        &self,
        component: &Harness,
        trigger: &str,
        flow_name: &str,
        event: WebhookEvent,
    ) -> Result<(), String> {
        let request = HttpRequest {
            method: "POST".into(),
            headers: event.headers,
            body: event.body,
            ..HttpRequest::default()
        };
        let run = component
            .trigger(trigger, request.clone(), json!({}))
            .await
            .map_err(|e| e.to_string())?;
        let (payload, branch) = match run.trigger_outcome().map_err(|e| e.to_string())? {
            // Refused (a bad signature) or answered (a ping): the flow does not run.
            TriggerOutcome::Respond { .. } => return Ok(()),
            TriggerOutcome::Accept {
                payload, branch, ..
            } => (payload.clone(), branch.clone()),
        };
        // Exactly what the flow engine hands a code-native flow.
        let results = flow::trigger_results(&request, flow::data_value(payload, None));
        let payload = flow::code_flow_payload(&results, branch.map(Value::String).as_ref());
        let run = self
            .flow
            .clone()
            .with_context(|c| c.flow_name = flow_name.into())
            .flow(payload)
            .await
            .map_err(|e| e.to_string())?;
        let result = match &run.outcome {
            Outcome::Completed { .. } => Ok(()),
            other => Err(format!("the flow ended with {other:?}")),
        };
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(run);
        result
    }
}

fn succeeded(run: Result<Run, impl std::fmt::Display>, what: &str) -> Result<(), String> {
    let run = run.map_err(|e| format!("{what}: {e}"))?;
    match &run.outcome {
        Outcome::Completed { .. } => Ok(()),
        other => Err(format!("{what} ended with {other:?}")),
    }
}

impl SyncDriver for Driver {
    async fn deploy(&self) -> Result<(), String> {
        succeeded(
            self.github.deploy("issueEvent", json!({})).await,
            "github deploy hook",
        )?;
        succeeded(
            self.zendesk.deploy("ticketEvent", json!({})).await,
            "zendesk deploy hook",
        )
    }

    async fn github(&self, event: WebhookEvent) -> Result<(), String> {
        self.deliver(&self.github, "issueEvent", GITHUB_FLOW, event)
            .await
    }

    async fn zendesk(&self, event: WebhookEvent) -> Result<(), String> {
        self.deliver(&self.zendesk, "ticketEvent", ZENDESK_FLOW, event)
            .await
    }

    async fn remove(&self) -> Result<(), String> {
        succeeded(
            self.github.remove("issueEvent", json!({})).await,
            "github remove hook",
        )?;
        succeeded(
            self.zendesk.remove("ticketEvent", json!({})).await,
            "zendesk remove hook",
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_scenario_passes() {
    let (github, zendesk, driver) = Driver::start().await;
    run_sync_scenario(&driver, &github, &zendesk).await;

    // What the flow decided for each delivery that passed its trigger (the forged one
    // never reached it).
    let decisions: Vec<Value> = driver
        .runs()
        .iter()
        .map(|run| {
            let summary = run.json().unwrap();
            summary
                .get("action")
                .or_else(|| summary.get("skipped"))
                .cloned()
                .unwrap()
        })
        .collect();
    assert_eq!(
        decisions,
        [
            "no ticket",
            "no ticket",
            "created-ticket",
            "added-ticket-comment",
            "loop guard",
            "created-issue-comment",
            "loop guard",
            "closed-ticket"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_invokes_the_components() {
    let (github, zendesk, driver) = Driver::start().await;
    driver.deploy().await.unwrap();

    let opened = github.open_issue(
        REPO,
        13,
        "Widget explodes",
        "It explodes when dropped.",
        "octocat",
        GITHUB_SECRET,
    );
    driver.github(opened.clone()).await.unwrap();
    let run = driver.runs().pop().unwrap();
    let ticket = zendesk.ticket_by_external_id("gh-13").unwrap();
    assert_eq!(
        run.json().unwrap(),
        json!({"action": "created-ticket", "ticketId": ticket.id, "externalId": "gh-13"})
    );
    let calls: Vec<(&str, &str, &Value)> = run
        .invocations
        .iter()
        .map(|call| (call.component.as_str(), call.action.as_str(), &call.input))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "zendesk",
                "findTicketByExternalId",
                &json!({"externalId": "gh-13"})
            ),
            (
                "zendesk",
                "createTicket",
                &json!({
                    "subject": "Widget explodes",
                    "body": "[Issue Created in GitHub] octocat opened acme/widgets#13:\n\nIt explodes when dropped.",
                    "externalId": "gh-13",
                })
            ),
        ]
    );
    assert!(run.invocations.iter().all(|call| call.outcome.is_success()));
    assert!(
        run.messages().contains(&"sync: created-ticket"),
        "{:?}",
        run.messages()
    );
    // Each invoked action ran as a step of the flow's execution, with its own log.
    let step_logs: Vec<_> = run
        .logs
        .iter()
        .filter_map(|record| record.step.as_deref())
        .collect();
    assert!(step_logs.contains(&"zendesk.createTicket"), "{step_logs:?}");

    // GitHub delivers the same event again: no second ticket.
    driver.github(opened).await.unwrap();
    let run = driver.runs().pop().unwrap();
    assert_eq!(run.json().unwrap()["skipped"], "ticket exists");
    assert_eq!(run.invocations.len(), 1);
    assert_eq!(zendesk.tickets().len(), 1);

    // An agent's comment goes to the issue through github.createComment.
    let agent = zendesk
        .agent_comments(ticket.id, "Fixed in 2.1.", "Sam Agent")
        .unwrap();
    driver.zendesk(agent).await.unwrap();
    let run = driver.runs().pop().unwrap();
    assert_eq!(run.invocations.len(), 1);
    let call = &run.invocations[0];
    assert_eq!(
        (call.component.as_str(), call.action.as_str()),
        ("github", "createComment")
    );
    assert_eq!(
        call.input,
        json!({"repo": REPO, "number": 13, "body": "[Comment Created in Zendesk] Sam Agent: Fixed in 2.1."})
    );

    // A component's error reaches the flow with its kind: a revoked Zendesk token is
    // a connection error naming the connection, and the flow fails with it.
    let revoked = Driver {
        flow: driver.flow.clone().with_connection(oauth(
            "zendesk",
            json!({"baseUrl": zendesk.url()}),
            "revoked",
        )),
        github: driver.github.clone(),
        zendesk: driver.zendesk.clone(),
        runs: Mutex::new(Vec::new()),
    };
    let closed = github.close_issue(REPO, 13, "octocat", GITHUB_SECRET);
    let error = revoked.github(closed).await.unwrap_err();
    assert!(error.contains("Connection"), "{error}");
    let run = revoked.runs().pop().unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::Connection);
    assert_eq!(error.connection.as_deref(), Some("zendesk"));
    assert_eq!(
        zendesk.ticket_by_external_id("gh-13").unwrap().status,
        "new"
    );

    driver.remove().await.unwrap();
    assert!(github.hooks().is_empty() && zendesk.webhooks().is_empty());
}
