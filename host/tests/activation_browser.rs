//! Issue 11's "Done when", in real chromium: a customer's user, in the vendor's iframe,
//! finds the GitHub-to-Zendesk sync in the marketplace, activates it, connects GitHub
//! in the OAuth popup at the fake provider, picks the repository its data source lists
//! with the customer's new token, fills the rest and deploys; a signed GitHub webhook
//! then opens the Zendesk ticket. On the way: deploying before connecting says the
//! connection is not set and deploys nothing; declining at the provider leaves the
//! popup on the failure page and the connection unset; a repository the data source
//! does not list is refused inline and stores nothing; and no page seen holds a token
//! of the provider, the client secret or the Zendesk token.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/embed.rs"]
mod embed;
mod support;

use std::time::Instant;

use browser::{Browser, WAIT};
use embed::*;
use fantoccini::elements::Element;
use fantoccini::wd::WindowHandle;
use serde_json::{Value, json};
use sluice_fakes::scenario::{GITHUB_SECRET, REPO};
use sluice_fakes::{FakeGithub, FakeOAuth, FakeZendesk, OAuthClient, TokenRegistry};
use support::{Client, Server, deliver, execution_id_of, webhook_url};

const CLIENT_ID: &str = "sluice-tenant-app";
const CLIENT_SECRET: &str = "tenant-app-secret-7c1f";
const ZENDESK_TOKEN: &str = "zd-token-5b2e";
/// A second repository the customer's GitHub account sees: the dropdown lists both.
const OTHER_REPO: &str = "acme/other";
const POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The browser's walk through the pages: every page source it reads is checked for
/// secrets when read, and kept to be checked again at the end against every token
/// the provider issued by then.
struct Walk<'a> {
    browser: &'a Browser,
    oauth: &'a FakeOAuth,
    /// The vendor's page's window: the iframe is in it.
    main: WindowHandle,
    pages: Vec<(String, String)>,
}

impl Walk<'_> {
    /// What no page may show: the provider's access and refresh tokens, the tenant's
    /// OAuth client secret, and the Zendesk token typed into a password field.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.oauth.issued_access_tokens();
        secrets.extend(self.oauth.issued_refresh_tokens());
        secrets.push(CLIENT_SECRET.to_string());
        secrets.push(ZENDESK_TOKEN.to_string());
        // A `secret: true` config variable: the wizard never shows it back either.
        secrets.push(GITHUB_SECRET.to_string());
        secrets
    }

    /// Reads the current document's source and checks it holds no secret.
    async fn read(&mut self, step: &str) {
        let source = self
            .browser
            .client
            .source()
            .await
            .unwrap_or_else(|err| panic!("the page source at {step}: {err}"));
        for secret in self.secrets() {
            assert!(
                !source.contains(&secret),
                "the page at {step} shows a secret ({} characters)",
                secret.len()
            );
        }
        self.pages.push((step.to_string(), source));
    }

    /// A step in the iframe: its page read, and a screenshot of the vendor's page
    /// around it (screenshots are of the top-level window).
    async fn step(&mut self, step: &str) {
        self.step_at(step, "h1").await;
    }

    /// A step in the iframe, its screenshot scrolled to the element `css` (the iframe
    /// shows part of a long wizard).
    async fn step_at(&mut self, step: &str, css: &str) {
        self.read(step).await;
        self.browser
            .client
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})",
                vec![json!(css)],
            )
            .await
            .unwrap_or_else(|err| panic!("scrolling to `{css}` at {step}: {err}"));
        self.browser.leave_iframe().await;
        self.browser.screenshot(step).await;
        self.browser.enter_iframe("iframe#sluice").await;
    }

    /// A step in the popup: its page read and a screenshot of it.
    async fn popup_step(&mut self, step: &str) {
        self.read(step).await;
        self.browser.screenshot(step).await;
    }

    /// Marks the current document, so that [`Walk::wait_next_document`] can tell the
    /// next one from it (a wait for an element could find it on the page being left).
    async fn mark_document(&self) {
        self.browser
            .client
            .execute("document.documentElement.dataset.left = 'yes'", vec![])
            .await
            .expect("marking the document");
    }

    /// Waits until the current browsing context shows a document loaded after the
    /// marked one.
    async fn wait_next_document(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let loaded = self
                .browser
                .client
                .execute(
                    "return !document.documentElement.hasAttribute('data-left') \
                     && document.readyState === 'complete'",
                    vec![],
                )
                .await
                .ok();
            if loaded == Some(json!(true)) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "no new page after {what} in {WAIT:?}; the page says: {}",
                    self.browser.body_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the button `css` of the current page and waits for the page it loads.
    async fn submit(&self, css: &str) {
        self.mark_document().await;
        self.browser
            .wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("a click on `{css}`: {err}"));
        self.wait_next_document(&format!("a click on `{css}`"))
            .await;
    }

    /// Back to the vendor's window and into the iframe.
    async fn back_to_iframe(&self) {
        self.browser
            .client
            .switch_to_window(self.main.clone())
            .await
            .expect("back to the vendor's window");
        self.browser.enter_iframe("iframe#sluice").await;
    }

    /// Clicks "Connect GitHub" in the wizard and switches to the window it opens.
    /// The wizard's document is marked first: its reload, when the popup reports
    /// back, is then told apart by [`Walk::wait_next_document`].
    async fn open_popup(&self) -> WindowHandle {
        self.mark_document().await;
        self.browser
            .wait_for("#connect-github")
            .await
            .click()
            .await
            .expect("a click on Connect GitHub");
        let deadline = Instant::now() + WAIT;
        loop {
            let windows = self.browser.client.windows().await.expect("the windows");
            if let Some(popup) = windows.into_iter().find(|window| *window != self.main) {
                self.browser
                    .client
                    .switch_to_window(popup.clone())
                    .await
                    .expect("switching to the popup");
                return popup;
            }
            assert!(
                Instant::now() < deadline,
                "Connect GitHub opened no window after {WAIT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `popup` is gone (the callback page closes it); panics with what it
    /// still shows when it is not.
    async fn wait_closed(&self, popup: &WindowHandle) {
        let deadline = Instant::now() + WAIT;
        loop {
            let windows = self.browser.client.windows().await.expect("the windows");
            if !windows.contains(popup) {
                return;
            }
            if Instant::now() > deadline {
                let url = self.browser.client.current_url().await.ok();
                panic!(
                    "the popup did not close itself after {WAIT:?}; at {url:?} it says: {}",
                    self.browser.body_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Types `value` into the wizard's field `name` (a form field name such as
/// `conn.zendesk.baseUrl`), replacing what it held.
async fn fill(browser: &Browser, name: &str, value: &str) {
    let field = browser.wait_for(&format!("[name='{name}']")).await;
    field.clear().await.expect("clearing a field");
    field.send_keys(value).await.expect("typing into a field");
}

/// The wizard's status text of connection `key`, once it has the status class
/// `status` (`pending`, `active`, `error`): its text alone tells "connected" from
/// "not connected" only by equality.
async fn connection_status(browser: &Browser, key: &str, status: &str) -> String {
    let element: Element = browser
        .wait_for(&format!("#connection-{key}-status.status-{status}"))
        .await;
    element.text().await.expect("the connection's status")
}

/// The instance the wizard in the iframe configures: the id in its URL
/// (`.../instances/<id>/configure`).
async fn wizard_instance(browser: &Browser) -> String {
    let url = browser
        .client
        .execute("return document.URL", vec![])
        .await
        .expect("the iframe's URL");
    let url = url.as_str().expect("a URL").to_string();
    url.rsplit("/instances/")
        .next()
        .and_then(|rest| rest.strip_suffix("/configure"))
        .unwrap_or_else(|| panic!("not a wizard URL: {url}"))
        .to_string()
}

/// The status of the instance's GitHub connection as the tenant's API tells it.
async fn github_status(client: &Client, id: &str) -> Value {
    let connections = client
        .get(&format!("/v1/instances/{id}/connections"))
        .await
        .expect(200)
        .body;
    connections["connections"]
        .as_array()
        .and_then(|all| all.iter().find(|connection| connection["key"] == "github"))
        .map(|connection| connection["status"].clone())
        .unwrap_or_else(|| panic!("no github connection in {connections}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_activates_the_sync_in_the_iframe_connects_github_in_a_popup_and_it_runs() {
    // The fakes: GitHub accepts only tokens its provider issued. The provider starts
    // after the server, with the client registered once with the server's callback
    // (the fake looks a client up by id: a second registration would go unseen).
    let registry = TokenRegistry::new();
    let github = FakeGithub::start_with_registry(&registry).await;
    github.add_repo(REPO);
    github.add_repo(OTHER_REPO);
    let zendesk = FakeZendesk::start(ZENDESK_TOKEN).await;
    let server = Server::start();
    let oauth = FakeOAuth::start(
        &registry,
        OAuthClient::new(CLIENT_ID, CLIENT_SECRET)
            .redirect_uri(&format!("{}/oauth/callback", server.url)),
    )
    .await;

    // The tenant: the integration, its OAuth app for GitHub (the API base URL the
    // customers' connections get), the signing key and the vendor's origin.
    let (client, tenant) = server.tenant_with_id("acme");
    client.publish_github_zendesk().await;
    client
        .put(
            "/v1/connection-templates/github/github",
            &json!({"fields": {
                "clientId": CLIENT_ID,
                "clientSecret": CLIENT_SECRET,
                "authorizeUrl": oauth.authorize_url(),
                "tokenUrl": oauth.token_url(),
                "revokeUrl": oauth.revoke_url(),
                "apiBaseUrl": github.url(),
            }}),
        )
        .await
        .expect(201);
    register_key(&client, A_PUBLIC).await;
    let token = sign(&claims(&tenant, "widgets-1", "user-1"), A_PRIVATE, None);
    let vendor = VendorApp::start(format!("{}/embed?jwt={token}", server.url)).await;
    allow_frames(&client, &[&vendor.origin]).await;

    let browser = Browser::start("activation_browser").await;
    browser.goto(&format!("{}/", vendor.origin)).await;
    browser.wait_for_text("h1", "Vendor app").await;
    let mut walk = Walk {
        browser: &browser,
        oauth: &oauth,
        main: browser.client.window().await.expect("the vendor's window"),
        pages: Vec::new(),
    };
    browser.enter_iframe("iframe#sluice").await;

    // The marketplace lists the integration by its definition's name.
    browser.wait_for_text("h1", "Marketplace").await;
    browser
        .wait_for_text(".card", "GitHub - Zendesk sync")
        .await;
    walk.step("01-marketplace").await;
    walk.submit(".card h2 a").await;
    browser.wait_for_text("h1", "GitHub - Zendesk sync").await;
    walk.step("02-integration").await;
    browser
        .wait_for_text("button", "Activate GitHub - Zendesk sync")
        .await;
    walk.submit("button.primary").await;

    // The wizard of the new draft: nothing connected, no repository to choose yet.
    browser.wait_for_text("h1", "Configure").await;
    assert_eq!(
        connection_status(&browser, "github", "pending").await,
        "not connected"
    );
    assert_eq!(
        connection_status(&browser, "zendesk", "pending").await,
        "not connected"
    );
    let id = wizard_instance(&browser).await;
    // The draft's allow-list is open to the API the template points the connection
    // at, so that the repository list can run as soon as GitHub is connected.
    let draft = client
        .get(&format!("/v1/instances/{id}"))
        .await
        .expect(200)
        .body;
    assert_eq!(draft["status"], "draft", "{draft}");
    assert_eq!(draft["allowedHosts"], json!([github.url()]), "{draft}");
    walk.step("03-wizard-empty").await;

    // Deploying before connecting GitHub: the error says so, nothing is deployed and
    // no webhook made. (What was typed is kept in the draft: Deploy saves first.)
    fill(&browser, "config.githubWebhookSecret", GITHUB_SECRET).await;
    fill(&browser, "conn.zendesk.baseUrl", &zendesk.url()).await;
    fill(&browser, "conn.zendesk.accessToken", ZENDESK_TOKEN).await;
    walk.submit("#deploy").await;
    let error = browser
        .wait_for("#wizard-error")
        .await
        .text()
        .await
        .expect("the error's text");
    assert!(
        error.contains("connection `github` is not set"),
        "the error does not say the github connection is not set: {error}"
    );
    walk.step_at("04-deploy-before-connecting", "#wizard-error")
        .await;
    let instance = client
        .get(&format!("/v1/instances/{id}"))
        .await
        .expect(200)
        .body;
    assert_eq!(instance["status"], "draft", "{instance}");
    assert_eq!(github_status(&client, &id).await, "pending");
    assert!(github.hooks().is_empty());

    // Declining at the provider: the popup shows why, the connection stays unset.
    let popup = walk.open_popup().await;
    browser.wait_for_text("h1", "Authorize").await;
    browser
        .wait_for_text("button", "Deny")
        .await
        .click()
        .await
        .expect("a click on Deny");
    browser.wait_for_text("h1", "Not connected").await;
    let text = browser.body_text().await;
    assert!(text.contains("declined"), "{text}");
    walk.popup_step("05-consent-denied").await;
    browser
        .client
        .close_window()
        .await
        .expect("closing the popup");
    walk.wait_closed(&popup).await;
    walk.back_to_iframe().await;
    // The failure page told the wizard too, which reloaded.
    walk.wait_next_document("the failure page's message").await;
    assert_eq!(
        connection_status(&browser, "github", "pending").await,
        "not connected"
    );
    assert_eq!(oauth.denials(), 1);
    assert_eq!(github_status(&client, &id).await, "pending");

    // Allowing: the callback page tells the wizard and closes the popup; the wizard
    // reloads itself showing the connection.
    let popup = walk.open_popup().await;
    browser.wait_for_text("h1", "Authorize").await;
    walk.popup_step("06-consent").await;
    browser
        .wait_for_text("button", "Allow")
        .await
        .click()
        .await
        .expect("a click on Allow");
    walk.wait_closed(&popup).await;
    walk.back_to_iframe().await;
    walk.wait_next_document("the callback page's message").await;
    assert_eq!(
        connection_status(&browser, "github", "active").await,
        "connected"
    );
    assert_eq!(github_status(&client, &id).await, "active");
    // The repositories come from the data source, run with the customer's token.
    let repository = "[name='config.githubRepository']";
    browser
        .wait_for(&format!("{repository} option[value='{REPO}']"))
        .await;
    browser
        .wait_for(&format!("{repository} option[value='{OTHER_REPO}']"))
        .await;
    walk.step_at("07-wizard-connected", repository).await;

    // A repository the data source does not list (a forged form, or one gone since
    // the page was shown): refused inline, and nothing is stored.
    let before = client
        .get(&format!("/v1/instances/{id}"))
        .await
        .expect(200)
        .body;
    browser
        .client
        .execute(
            "var select = document.querySelector(arguments[0]);\n\
             var option = document.createElement('option');\n\
             option.value = option.textContent = 'evil/elsewhere';\n\
             select.appendChild(option);\n\
             select.value = 'evil/elsewhere';",
            vec![json!(repository)],
        )
        .await
        .expect("a repository the data source does not list");
    walk.submit("button[name='action'][value='save']").await;
    browser
        .wait_for_text(
            "#wizard-error",
            "not one of the values its data source lists",
        )
        .await;
    walk.step_at("08-unlisted-repository", "#wizard-error")
        .await;
    let after = client
        .get(&format!("/v1/instances/{id}"))
        .await
        .expect(200)
        .body;
    assert_eq!(before, after, "a refused save changed the instance");

    // The rest, then Deploy.
    browser
        .wait_for(repository)
        .await
        .select_by_value(REPO)
        .await
        .expect("choosing the repository");
    fill(&browser, "config.githubWebhookSecret", GITHUB_SECRET).await;
    fill(&browser, "conn.zendesk.baseUrl", &zendesk.url()).await;
    fill(&browser, "conn.zendesk.accessToken", ZENDESK_TOKEN).await;
    walk.step_at("09-wizard-filled", "#deploy").await;
    walk.submit("#deploy").await;
    browser.wait_for("#instance-status.status-deployed").await;
    browser.wait_for_text("#wizard-notice", "deployed").await;
    walk.step("10-deployed").await;

    // The deploy hook created the repository's webhook at GitHub with the customer's
    // token (the fake accepts no other), and a signed "issue opened" makes the ticket.
    assert_eq!(github.hooks().len(), 1);
    let instance = client
        .get(&format!("/v1/instances/{id}"))
        .await
        .expect(200)
        .body;
    assert_eq!(instance["status"], "deployed", "{instance}");
    let event = github.open_issue(REPO, 1, "Issue 1", "It broke.", "octocat", GITHUB_SECRET);
    let reply = deliver(
        &webhook_url(&instance, "githubEvents"),
        &event.headers,
        event.body,
    )
    .await;
    assert!(reply.status == 200 || reply.status == 202, "{}", reply.text);
    let execution = execution_id_of(&reply).expect("an execution id");
    let execution = client.finished_execution(&execution).await;
    assert_eq!(execution["status"], "succeeded", "{execution}");
    assert!(zendesk.ticket_by_external_id("gh-1").is_some());

    // Every page seen, against every token issued by the end.
    let secrets = walk.secrets();
    assert!(secrets.len() >= 4, "{} secrets", secrets.len());
    for (step, source) in &walk.pages {
        for secret in &secrets {
            assert!(
                !source.contains(secret.as_str()),
                "the page at {step} shows a secret"
            );
        }
    }
    browser.close().await;
}
