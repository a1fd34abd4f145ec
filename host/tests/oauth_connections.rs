//! OAuth 2.0 connections over HTTP against a real `sluice serve`, the fake OAuth
//! provider and the fake GitHub (which accepts only tokens the provider issued): the
//! seed's GitHub-to-Zendesk integration deployed as a draft, its GitHub connection
//! authorized with PKCE, its repository picked from the data source, deployed, and
//! run by a signed webhook with the customer's token; then expiry (eight concurrent
//! uses, one refresh), `invalid_grant` (a typed connection error, reconnecting fixes
//! it), the bad inputs of the callback, and no token anywhere on disk or in answers.

#[path = "support/embed.rs"]
mod embed;
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use sluice_fakes::scenario::{GITHUB_SECRET, REPO};
use sluice_fakes::{FakeGithub, FakeZendesk, TokenRegistry};
use sluice_fakes::{FakeOAuth, OAuthClient};
use support::{Client, Server, deliver, execution_id_of, webhook_url};

const CLIENT_ID: &str = "sluice-tenant-app";
const CLIENT_SECRET: &str = "tenant-app-secret-7c1f";
const ZENDESK_TOKEN: &str = "zd-token";
/// Seconds an access token lives at the fake provider.
const TOKEN_LIFETIME: u64 = 2;

struct Setup {
    server: Server,
    client: Client,
    oauth: FakeOAuth,
    github: FakeGithub,
    zendesk: FakeZendesk,
    customer: String,
    tenant: String,
    /// A browser-like HTTP client that does not follow redirects.
    browser: reqwest::Client,
    /// The server's log (at `info`).
    log: tempfile::NamedTempFile,
}

async fn setup() -> Setup {
    // The refresher's background task is off and the margin zero, so that the only
    // refreshes are the ones executions need, counted below.
    let log = tempfile::NamedTempFile::new().unwrap();
    let server = Server::start_logging_to(
        &[
            "--oauth-refresh-every-ms",
            "0",
            "--oauth-refresh-margin-secs",
            "0",
        ],
        log.path(),
    );
    let registry = TokenRegistry::new();
    let oauth = FakeOAuth::start(
        &registry,
        OAuthClient::new(CLIENT_ID, CLIENT_SECRET)
            .redirect_uri(&format!("{}/oauth/callback", server.url)),
    )
    .await;
    oauth.set_token_lifetime(TOKEN_LIFETIME);
    let github = FakeGithub::start_with_registry(&registry).await;
    github.add_repo(REPO);
    github.add_repo("acme/other");
    let zendesk = FakeZendesk::start(ZENDESK_TOKEN).await;
    let (client, tenant) = server.tenant_with_id("acme");
    client.publish_github_zendesk().await;
    let customer = client
        .post(
            "/v1/customers",
            &json!({"name": "Widgets Inc", "externalId": "widgets"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Setup {
        server,
        client,
        oauth,
        github,
        zendesk,
        customer,
        tenant,
        browser,
        log,
    }
}

impl Setup {
    /// The tenant's OAuth app for the github connection type, pointed at the fake.
    async fn template(&self) {
        self.client
            .put(
                "/v1/connection-templates/github/github",
                &json!({"fields": {
                    "clientId": CLIENT_ID,
                    "clientSecret": CLIENT_SECRET,
                    "authorizeUrl": self.oauth.authorize_url(),
                    "tokenUrl": self.oauth.token_url(),
                    "revokeUrl": self.oauth.revoke_url(),
                }}),
            )
            .await
            .expect(201);
    }

    async fn draft(&self) -> Value {
        let instance = self
            .client
            .post(
                "/v1/instances",
                &json!({
                    "customerId": self.customer,
                    "integration": "github-zendesk",
                    "name": "Widgets sync",
                    "draft": true,
                    "config": {"githubWebhookSecret": GITHUB_SECRET},
                    "connections": {
                        "github": {"kind": "oauth2", "fields": {"apiBaseUrl": self.github.url()}},
                        "zendesk": {"kind": "oauth2", "fields": {"baseUrl": self.zendesk.url(), "accessToken": ZENDESK_TOKEN}},
                    },
                    "allowedHosts": [self.github.url(), self.zendesk.url()],
                }),
            )
            .await
            .expect(201)
            .body;
        assert_eq!(instance["status"], "draft", "{instance}");
        instance
    }

    /// Starts authorizing `instance`'s github connection; the authorize URL.
    async fn authorize(&self, instance: &str) -> url::Url {
        let reply = self
            .client
            .post(
                &format!("/v1/instances/{instance}/connections/github/authorize"),
                &json!({}),
            )
            .await
            .expect(200);
        url::Url::parse(reply.body["authorizeUrl"].as_str().unwrap()).unwrap()
    }

    /// Answers the provider's consent page as the customer would, and returns where
    /// the provider sends the browser back (the callback URL).
    async fn consent(&self, authorize: &url::Url, decision: &str) -> String {
        let page = self.browser.get(authorize.clone()).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
        form.push(("decision".into(), decision.into()));
        let answer = self
            .browser
            .post(self.oauth.authorize_url())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 302, "{}", answer.text().await.unwrap());
        answer.headers()["location"].to_str().unwrap().to_string()
    }

    /// Follows the provider's redirect to the callback: status and page.
    async fn callback(&self, url: &str) -> (u16, String) {
        let reply = self.browser.get(url).send().await.unwrap();
        (reply.status().as_u16(), reply.text().await.unwrap())
    }

    async fn connect(&self, instance: &str) {
        let authorize = self.authorize(instance).await;
        let back = self.consent(&authorize, "allow").await;
        let (status, page) = self.callback(&back).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("data-status=\"connected\""), "{page}");
    }

    async fn github_status(&self, instance: &str) -> Value {
        let connections = self
            .client
            .get(&format!("/v1/instances/{instance}/connections"))
            .await
            .expect(200)
            .body;
        connections["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|connection| connection["key"] == "github")
            .cloned()
            .unwrap()
    }

    /// Delivers GitHub's "issue opened" for issue `number`; the execution when ended.
    async fn open_issue(&self, instance: &Value, number: u64) -> Value {
        let event = self.github.open_issue(
            REPO,
            number,
            &format!("Issue {number}"),
            "It broke.",
            "octocat",
            GITHUB_SECRET,
        );
        let reply = deliver(
            &webhook_url(instance, "githubEvents"),
            &event.headers,
            event.body,
        )
        .await;
        assert!(reply.status == 200 || reply.status == 202, "{}", reply.text);
        let id = execution_id_of(&reply).expect("an execution id");
        self.client.finished_execution(&id).await
    }

    /// An agent comments on the ticket of issue 1 in Zendesk: the flow copies it to
    /// the GitHub issue with the customer's GitHub token. The execution when ended.
    async fn agent_comment(&self, instance: &Value, body: &str) -> Value {
        let ticket = self
            .zendesk
            .ticket_by_external_id("gh-1")
            .expect("the ticket of issue 1");
        let event = self
            .zendesk
            .agent_comments(ticket.id, body, "Sam Agent")
            .expect("the Zendesk webhook the deploy hook created");
        let reply = deliver(
            &webhook_url(instance, "zendeskEvents"),
            &event.headers,
            event.body,
        )
        .await;
        assert!(reply.status == 200 || reply.status == 202, "{}", reply.text);
        let id = execution_id_of(&reply).expect("an execution id");
        self.first_attempt(&id).await
    }

    /// Polls an execution until it has ended, or failed once (its flow retries a
    /// failure after a minute: it is then queued again as attempt 2).
    async fn first_attempt(&self, id: &str) -> Value {
        for _ in 0..600 {
            let execution = self
                .client
                .get(&format!("/v1/executions/{id}"))
                .await
                .expect(200)
                .body;
            let status = execution["status"].as_str().unwrap_or("");
            if !matches!(status, "queued" | "waiting" | "running")
                || execution["attempt"].as_i64().unwrap_or(0) > 1
            {
                return execution;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("execution {id} did not end");
    }

    async fn wait_for_expiry(&self) {
        tokio::time::sleep(Duration::from_millis(TOKEN_LIFETIME * 1000 + 300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_connects_github_with_oauth_and_the_sync_runs_with_their_token() {
    // Shared with the concurrent deliveries below.
    let setup = std::sync::Arc::new(setup().await);
    let client = &setup.client;
    setup.template().await;
    // Templates are set once: the instances that use one keep its values.
    client
        .put(
            "/v1/connection-templates/github/github",
            &json!({"fields": {"clientId": "other"}}),
        )
        .await
        .expect(409);
    let listed = client.get("/v1/connection-templates").await.expect(200);
    assert!(!listed.text.contains(CLIENT_SECRET), "{}", listed.text);

    let draft = setup.draft().await;
    let id = draft["id"].as_str().unwrap().to_string();
    // Not connected yet: it cannot be deployed, and its webhooks run nothing.
    let refused = client
        .post(&format!("/v1/instances/{id}/deploy"), &json!({}))
        .await
        .expect(400);
    assert!(refused.text.contains("github"), "{}", refused.text);
    assert_eq!(setup.github_status(&id).await["status"], "pending");

    // The authorize URL carries the client, the scopes, a signed state and PKCE.
    let authorize = setup.authorize(&id).await;
    let query: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["scope"].contains("repo"));
    assert!(!authorize.as_str().contains(CLIENT_SECRET));
    let back = setup.consent(&authorize, "allow").await;
    let (status, page) = setup.callback(&back).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-status=\"connected\""), "{page}");
    for token in setup.oauth.issued_access_tokens() {
        assert!(!page.contains(&token), "the callback page shows a token");
    }
    // The state is single-use: the same callback again is refused, nothing changes.
    let (status, page) = setup.callback(&back).await;
    assert_eq!(status, 400, "{page}");
    assert_eq!(setup.github_status(&id).await["status"], "active");

    // The repository dropdown: the data source runs with the customer's fresh token.
    let items = client
        .get(&format!("/v1/instances/{id}/config/githubRepository/items"))
        .await
        .expect(200)
        .body;
    let keys: Vec<&str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item["key"].as_str())
        .collect();
    assert!(keys.contains(&REPO), "{items}");
    // A value the data source does not list, or of the wrong type, is refused.
    let wrong = client
        .patch(
            &format!("/v1/instances/{id}"),
            &json!({"config": {"githubRepository": "evil/elsewhere", "githubWebhookSecret": GITHUB_SECRET}}),
        )
        .await
        .expect(400);
    assert!(wrong.text.contains("githubRepository"), "{}", wrong.text);
    client
        .patch(
            &format!("/v1/instances/{id}"),
            &json!({"config": {"githubRepository": 42, "githubWebhookSecret": GITHUB_SECRET}}),
        )
        .await
        .expect(400);
    client
        .patch(
            &format!("/v1/instances/{id}"),
            &json!({"config": {"githubRepository": REPO, "githubWebhookSecret": GITHUB_SECRET}}),
        )
        .await
        .expect(200);

    // Deploying runs the GitHub deploy hook with the customer's token: the webhook
    // exists at the fake GitHub, which accepts only tokens its provider issued.
    let instance = client
        .post(&format!("/v1/instances/{id}/deploy"), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(instance["status"], "deployed", "{instance}");
    assert_eq!(setup.github.hooks().len(), 1);

    // A signed "issue opened" creates the Zendesk ticket.
    let execution = setup.open_issue(&instance, 1).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert!(setup.zendesk.ticket_by_external_id("gh-1").is_some());

    // The token expires; eight concurrent executions that call GitHub (eight agent
    // comments copied to the issue: the Zendesk flow is no FIFO queue) refresh it
    // once, and all of them succeed.
    setup.wait_for_expiry().await;
    let before = setup.oauth.refresh_requests();
    let runs = (0..8).map(|n| {
        let (setup, instance) = (std::sync::Arc::clone(&setup), instance.clone());
        tokio::spawn(async move { setup.agent_comment(&instance, &format!("Update {n}")).await })
    });
    for execution in futures_join(runs).await {
        assert_eq!(execution["status"], "succeeded", "{execution}");
    }
    assert_eq!(setup.oauth.refresh_requests() - before, 1);
    assert_eq!(
        setup
            .github
            .comments(REPO, 1)
            .iter()
            .filter(|comment| comment.body.contains("Update "))
            .count(),
        8
    );
    // And the eight concurrent uses of the repository dropdown after the next expiry.
    setup.wait_for_expiry().await;
    let uses = (0..8).map(|_| {
        let client = client.clone();
        let path = format!("/v1/instances/{id}/config/githubRepository/items");
        tokio::spawn(async move { client.get(&path).await })
    });
    for reply in futures_join(uses).await {
        reply.expect(200);
    }
    assert_eq!(setup.oauth.refresh_requests() - before, 2);
    // And an execution that calls GitHub after the next expiry refreshes it once and
    // succeeds: the Zendesk comment reaches the issue.
    setup.wait_for_expiry().await;
    let execution = setup.agent_comment(&instance, "We are on it.").await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert_eq!(setup.oauth.refresh_requests() - before, 3);
    assert!(
        setup
            .github
            .comments(REPO, 1)
            .iter()
            .any(|comment| comment.body.contains("We are on it.")),
        "{:?}",
        setup.github.comments(REPO, 1)
    );

    // The provider revokes the grant: the next refresh gets invalid_grant, the
    // connection is in error with the reason, and the execution fails with a
    // connection error.
    setup.oauth.set_refresh_invalid_grant(true);
    setup.wait_for_expiry().await;
    let execution = setup.agent_comment(&instance, "Any news?").await;
    let failed_id = execution["id"].as_str().unwrap().to_string();
    let record = client
        .get(&format!("/v1/executions/{failed_id}"))
        .await
        .expect(200)
        .text;
    assert!(
        record.contains("connection") && record.contains("invalid_grant"),
        "{record}"
    );
    let status = setup.github_status(&id).await;
    assert_eq!(status["status"], "error", "{status}");
    assert!(
        status["statusDetail"]
            .as_str()
            .unwrap_or("")
            .contains("invalid_grant"),
        "{status}"
    );
    // The customer's wizard says so.
    embed::register_key(client, embed::A_PUBLIC).await;
    let session = embed::open_session(
        &setup.server.url,
        &embed::sign(
            &embed::claims(&setup.tenant, "widgets", "user-1"),
            embed::A_PRIVATE,
            None,
        ),
    )
    .await;
    let wizard = format!("{}{session}/instances/{id}/configure", setup.server.url);
    let page = setup.browser.get(&wizard).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("needs reconnecting") && page.contains("invalid_grant"),
        "{page}"
    );
    // Reconnecting fixes it.
    setup.oauth.set_refresh_invalid_grant(false);
    setup.connect(&id).await;
    assert_eq!(setup.github_status(&id).await["status"], "active");
    let page = setup
        .browser
        .get(&wizard)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("needs reconnecting"), "{page}");
    let execution = setup.agent_comment(&instance, "Fixed now.").await;
    assert_eq!(execution["status"], "succeeded", "{execution}");

    // No access token, refresh token or client secret in any answer or on disk.
    let answers = [
        client.get(&format!("/v1/instances/{id}")).await.text,
        client
            .get(&format!("/v1/instances/{id}/connections"))
            .await
            .text,
        client.get("/v1/connection-templates").await.text,
    ];
    let mut secrets = setup.oauth.issued_access_tokens();
    secrets.extend(setup.oauth.issued_refresh_tokens());
    secrets.push(CLIENT_SECRET.to_string());
    assert!(secrets.len() > 4);
    for secret in &secrets {
        for answer in &answers {
            assert!(
                !answer.contains(secret.as_str()),
                "an answer shows a secret"
            );
        }
    }
    let log = std::fs::read_to_string(setup.log.path()).unwrap();
    assert!(
        log.contains("refreshed an OAuth token"),
        "the log is read at info: {log}"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the server's log shows a secret"
        );
    }
    for file in files_under(setup.server.data_dir.path()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for secret in &secrets {
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{} holds a secret in plaintext",
                file.display()
            );
        }
    }

    // Removing the instance revokes the grant at the provider.
    let revoked = setup.oauth.revoke_calls();
    client
        .delete(&format!("/v1/instances/{id}"))
        .await
        .expect(200);
    assert_eq!(setup.oauth.revoke_calls(), revoked + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_callbacks_are_refused_and_store_nothing() {
    let setup = setup().await;
    setup.template().await;
    let draft = setup.draft().await;
    let id = draft["id"].as_str().unwrap().to_string();
    let callback = format!("{}/oauth/callback", setup.server.url);

    // No state, a malformed one, a forged one.
    for query in [
        "code=abc".to_string(),
        "state=nonsense&code=abc".to_string(),
        format!("state=AAAA.{}.AAAA&code=abc", i64::MAX),
    ] {
        let (status, page) = setup.callback(&format!("{callback}?{query}")).await;
        assert_eq!(status, 400, "{query}: {page}");
        assert!(page.contains("data-status=\"error\""), "{page}");
    }

    // The customer declines.
    let authorize = setup.authorize(&id).await;
    let back = setup.consent(&authorize, "deny").await;
    assert!(back.contains("error=access_denied"), "{back}");
    let (status, page) = setup.callback(&back).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("declined"), "{page}");

    // The token endpoint fails (500), then answers HTML: a clear page each time.
    setup.oauth.fail_next_token_requests(1);
    let back = setup.consent(&setup.authorize(&id).await, "allow").await;
    let (status, page) = setup.callback(&back).await;
    assert_eq!(status, 502, "{page}");
    setup.oauth.set_token_html(true);
    let back = setup.consent(&setup.authorize(&id).await, "allow").await;
    let (status, page) = setup.callback(&back).await;
    assert_eq!(status, 502, "{page}");
    assert!(page.contains("not a token response"), "{page}");
    setup.oauth.set_token_html(false);
    // Nothing was stored by any of them.
    assert_eq!(setup.github_status(&id).await["status"], "pending");

    // With the tenant's redirects set, an authorization in the whole window ends there.
    setup
        .client
        .put(
            "/v1/embed-settings",
            &json!({"frameAncestors": [],
                "oauthSuccessRedirect": "https://vendor.example.com/connected?from=sluice",
                "oauthFailureRedirect": "https://vendor.example.com/failed"}),
        )
        .await
        .expect(200);
    let back = setup.consent(&setup.authorize(&id).await, "deny").await;
    let reply = setup.browser.get(&back).send().await.unwrap();
    assert_eq!(reply.status(), 303);
    let location = reply.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://vendor.example.com/failed?"),
        "{location}"
    );
    assert!(location.contains(&format!("instanceId={id}")), "{location}");
    assert!(
        location.contains("status=error") && location.contains("access_denied"),
        "{location}"
    );
    let back = setup.consent(&setup.authorize(&id).await, "allow").await;
    let reply = setup.browser.get(&back).send().await.unwrap();
    assert_eq!(reply.status(), 303);
    let location = reply.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://vendor.example.com/connected?from=sluice&instanceId="),
        "{location}"
    );
    assert!(
        location.contains("connectionKey=github&status=connected"),
        "{location}"
    );
    assert_eq!(setup.github_status(&id).await["status"], "active");

    // Another tenant cannot start or read anything of this instance.
    let other = setup.server.tenant("other");
    other
        .post(
            &format!("/v1/instances/{id}/connections/github/authorize"),
            &json!({}),
        )
        .await
        .expect(404);
    other
        .get(&format!("/v1/instances/{id}/connections"))
        .await
        .expect(404);
    // A connection the integration does not declare, or one without OAuth.
    setup
        .client
        .post(
            &format!("/v1/instances/{id}/connections/nope/authorize"),
            &json!({}),
        )
        .await
        .expect(400);
    setup
        .client
        .post(
            &format!("/v1/instances/{id}/connections/zendesk/authorize"),
            &json!({}),
        )
        .await
        .expect(400);
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.unwrap());
    }
    results
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
