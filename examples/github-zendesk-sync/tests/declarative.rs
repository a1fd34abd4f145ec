//! The declarative version of the sync (`examples/flows/github-zendesk-sync.yaml`),
//! run by the flow engine with the `github`, `zendesk` and `text` components, held to
//! the same shared scenario as the code-native flow (`tests/scenario.rs`): the same
//! observable effects on the fake GitHub and Zendesk.

use std::sync::Arc;

use serde_json::json;
use sluice_fakes::scenario::{GITHUB_SECRET, REPO, SyncDriver, run_sync_scenario};
use sluice_fakes::{FakeGithub, FakeZendesk, WebhookEvent};
use sluice_runtime::flow::{
    CatalogEntry, Definition, ExecutionRecord, FlowEngine, Implementation, MemoryCatalog, Plan,
    RunEnv, compile,
};
use sluice_runtime::guest_build::{example, examples_dir};
use sluice_runtime::{
    Call, Capabilities, Connection, EgressPolicy, ExecutionContext, HttpRequest, MemoryStateStore,
    OAuthToken, Runtime, RuntimeConfig, StaticConfig, StaticConnections,
};

const GITHUB_TOKEN: &str = "gh-token";
const ZENDESK_TOKEN: &str = "zd-token";

fn oauth(key: &str, fields: serde_json::Value, token: &str) -> Connection {
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

/// One deployed instance of the declarative integration.
struct Declarative {
    engine: FlowEngine,
    definition: Definition,
    catalog: MemoryCatalog,
    implementation: Implementation,
    env: RunEnv,
}

impl Declarative {
    async fn start(github: &FakeGithub, zendesk: &FakeZendesk) -> Declarative {
        let runtime = Runtime::new(RuntimeConfig::default().max_concurrency(16)).unwrap();
        let mut catalog = MemoryCatalog::new();
        for name in ["github", "zendesk", "text"] {
            let bytes = std::fs::read(example(name).unwrap()).unwrap();
            catalog.add_bytes(&runtime, &bytes, name).await.unwrap();
        }
        let path = examples_dir().join("flows/github-zendesk-sync.yaml");
        let definition = Definition::from_yaml(&std::fs::read_to_string(path).unwrap()).unwrap();
        let plan: Plan = compile(&definition, &catalog).unwrap_or_else(|err| panic!("{err}"));
        let capabilities = Capabilities {
            state: Arc::new(MemoryStateStore::new()),
            connections: Arc::new(
                StaticConnections::new()
                    .with(oauth(
                        "github",
                        json!({"apiBaseUrl": github.url()}),
                        GITHUB_TOKEN,
                    ))
                    .with(oauth(
                        "zendesk",
                        json!({"baseUrl": zendesk.url()}),
                        ZENDESK_TOKEN,
                    )),
            ),
            config: Arc::new(
                StaticConfig::new()
                    .with_str("githubRepository", REPO)
                    .with_str("githubWebhookSecret", GITHUB_SECRET),
            ),
            egress: Arc::new(EgressPolicy::parse([github.url(), zendesk.url()]).unwrap()),
            // The fakes listen on loopback, which only the operator can open.
            network: Arc::new(sluice_runtime::NetworkPolicy::new().allow_loopback()),
            ..Capabilities::default()
        };
        let env = RunEnv {
            context: ExecutionContext {
                tenant_id: "tenant-a".into(),
                integration_id: "github-zendesk".into(),
                instance_id: "instance-1".into(),
                // The engine names flows by key; so do the instance's webhook URLs.
                webhook_urls: vec![
                    (
                        "githubEvents".into(),
                        "https://hooks.sluice.test/github".into(),
                    ),
                    (
                        "zendeskEvents".into(),
                        "https://hooks.sluice.test/zendesk".into(),
                    ),
                ],
                ..ExecutionContext::default()
            },
            capabilities,
            limits: Default::default(),
            deadline: None,
        };
        Declarative {
            engine: FlowEngine::new(runtime),
            definition,
            catalog,
            implementation: Implementation::new("declarative", plan),
            env,
        }
    }

    /// Runs the deploy (or remove) hook of every flow's component trigger, as a host
    /// does when it deploys (or removes) the instance.
    async fn hooks(&self, deploy: bool) -> Result<(), String> {
        for flow in &self.definition.flows {
            let (Some(key), Some(trigger)) = (&flow.key, &flow.trigger) else {
                continue;
            };
            let entry: &CatalogEntry = self
                .catalog
                .entries()
                .find(|entry| entry.manifest.key == trigger.component)
                .ok_or_else(|| format!("no component `{}`", trigger.component))?;
            let (name, inputs) = (trigger.trigger.clone(), "{}".to_string());
            let call = if deploy {
                Call::InstanceDeploy {
                    trigger: name,
                    inputs,
                }
            } else {
                Call::InstanceRemove {
                    trigger: name,
                    inputs,
                }
            };
            let context = ExecutionContext {
                execution_id: format!("{key}-hook"),
                flow_name: key.clone(),
                ..self.env.context.clone()
            };
            let report = self
                .engine
                .runtime()
                .execute(
                    &entry.component,
                    call,
                    context,
                    &self.env.capabilities,
                    &self.env.limits,
                )
                .await
                .map_err(|err| err.to_string())?;
            if !report.outcome.is_success() {
                return Err(format!("{key} hook: {:?}", report.outcome));
            }
        }
        Ok(())
    }

    async fn deliver(&self, flow: &str, event: WebhookEvent) -> Result<ExecutionRecord, String> {
        let request = HttpRequest {
            method: "POST".into(),
            headers: event.headers,
            body: event.body,
            ..HttpRequest::default()
        };
        self.implementation
            .deliver(&self.engine, flow, request, &self.env)
            .await
    }
}

impl SyncDriver for Declarative {
    async fn deploy(&self) -> Result<(), String> {
        self.hooks(true).await
    }

    async fn github(&self, event: WebhookEvent) -> Result<(), String> {
        self.deliver("githubEvents", event).await.map(drop)
    }

    async fn zendesk(&self, event: WebhookEvent) -> Result<(), String> {
        self.deliver("zendeskEvents", event).await.map(drop)
    }

    async fn remove(&self) -> Result<(), String> {
        self.hooks(false).await
    }
}

#[tokio::test]
async fn the_declarative_sync_passes_the_shared_scenario() {
    let github = FakeGithub::start(GITHUB_TOKEN).await;
    github.add_repo(REPO);
    let zendesk = FakeZendesk::start(ZENDESK_TOKEN).await;
    let driver = Declarative::start(&github, &zendesk).await;
    run_sync_scenario(&driver, &github, &zendesk).await;
}

#[tokio::test]
async fn the_records_show_the_path_each_delivery_took() {
    let github = FakeGithub::start(GITHUB_TOKEN).await;
    github.add_repo(REPO);
    let zendesk = FakeZendesk::start(ZENDESK_TOKEN).await;
    let driver = Declarative::start(&github, &zendesk).await;
    driver.deploy().await.unwrap();

    let forged = github.open_issue(REPO, 3, "Forged", "x", "mallory", "wrong-secret");
    let record = driver.deliver("githubEvents", forged).await.unwrap();
    assert_eq!(
        record.response.as_ref().map(|response| response.status),
        Some(401)
    );
    assert!(
        record.step("createTicket").is_none(),
        "a rejected delivery ran steps"
    );

    let opened = github.open_issue(REPO, 3, "Crash", "on start", "octocat", GITHUB_SECRET);
    let record = driver
        .deliver("githubEvents", opened.clone())
        .await
        .unwrap();
    assert_eq!(
        record.step("event").unwrap().branch.as_deref(),
        Some("Issue Opened")
    );
    let created = record
        .step("createTicket")
        .unwrap()
        .result_value()
        .unwrap()
        .clone();
    assert_eq!(created["external_id"], "gh-3");

    // A redelivery finds the ticket and stops before creating a second one.
    let record = driver.deliver("githubEvents", opened).await.unwrap();
    assert!(record.step("ignoreRedelivery").is_some());
    assert!(record.step("createTicket").is_none());
    assert_eq!(zendesk.tickets().len(), 1);

    // A failing step names itself: the Zendesk token is revoked mid-way.
    let ticket = zendesk.ticket_by_external_id("gh-3").unwrap();
    let echo = zendesk.agent_comments(ticket.id, "hi", "Sam").unwrap();
    let mut broken = driver;
    broken.env.capabilities.connections = Arc::new(
        StaticConnections::new()
            .with(oauth(
                "github",
                json!({"apiBaseUrl": github.url()}),
                "revoked",
            ))
            .with(oauth(
                "zendesk",
                json!({"baseUrl": zendesk.url()}),
                ZENDESK_TOKEN,
            )),
    );
    let err = broken.deliver("zendeskEvents", echo).await.unwrap_err();
    assert!(err.contains("commentOnIssue"), "{err}");
    assert!(err.contains("connection"), "{err}");
}
