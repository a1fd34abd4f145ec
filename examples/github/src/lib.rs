//! `github`: an example connector for GitHub's REST API over an OAuth connection:
//! issue, comment and webhook actions, the signed `issueEvent` trigger (whose instance
//! hooks register its webhook) and the `repositories` picklist for the config wizard.

use std::time::Duration;

use serde::de::DeserializeOwned;
use sluice_sdk::hmac::verify_github_signature;
use sluice_sdk::oauth2::{ClientAuth, OAuth2};
use sluice_sdk::prelude::*;
use sluice_sdk::{RequestBuilder, Response};

/// Config-variable key of the connection every call uses.
pub const CONNECTION: &str = "github";
/// The public API, when the connection names no other.
pub const DEFAULT_API: &str = "https://api.github.com";
/// Config variable naming the repository (`owner/name`) the trigger's webhook watches.
pub const REPOSITORY_CONFIG: &str = "githubRepository";
/// Config variable holding the webhook secret, unless the trigger's input gives one.
pub const SECRET_CONFIG: &str = "githubWebhookSecret";
/// Events the trigger's webhook subscribes to.
pub const EVENTS: [&str; 2] = ["issues", "issue_comment"];
/// Branches of `issueEvent`.
pub const ISSUE_OPENED: &str = "Issue Opened";
pub const ISSUE_COMMENTED: &str = "Issue Commented";
pub const ISSUE_CLOSED: &str = "Issue Closed";
pub const OTHER: &str = "Other";
/// Pages followed through `link: rel="next"` before a listing stops (100 items each).
const MAX_PAGES: usize = 10;

/// Fields of the `github` connection (the OAuth token comes from the host).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GithubFields {
    /// API base URL, for GitHub Enterprise Server (`https://github.example.com/api/v3`)
    #[serde(default = "default_api")]
    pub api_base_url: Option<String>,
}

fn default_api() -> Option<String> {
    Some(DEFAULT_API.to_string())
}

/// The API as the connection sees it: every request carries its token, and a 401/403
/// is a connection error naming it.
struct Api {
    connection: Connection,
    base: String,
}

impl Api {
    fn new(ctx: &Context) -> Result<Self, Error> {
        let connection = ctx.connection(CONNECTION)?;
        let fields: GithubFields = connection.fields_as()?;
        let base = fields
            .api_base_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .unwrap_or(DEFAULT_API)
            .trim_end_matches('/')
            .to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::connection(
                CONNECTION,
                format!("`apiBaseUrl` must be an http(s) URL, not `{base}`"),
            ));
        }
        Ok(Self { connection, base })
    }

    fn at(&self, method: &str, url: String) -> RequestBuilder {
        Http::request(method, url)
            .connection(&self.connection)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            // GitHub refuses requests without a user agent.
            .header("user-agent", "sluice-github-connector")
            .timeout(Duration::from_secs(30))
    }

    fn request(&self, method: &str, path: &str) -> RequestBuilder {
        self.at(method, format!("{}{path}", self.base))
    }

    fn send<T: DeserializeOwned>(&self, request: RequestBuilder, what: &str) -> Result<T, Error> {
        request.send_json().map_err(|e| e.context(what))
    }

    /// Every item of a listing, following `link: <...>; rel="next"` for up to
    /// [`MAX_PAGES`] pages.
    fn all<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<Vec<T>, Error> {
        let mut items = Vec::new();
        let mut request = self.request("GET", path).query("per_page", 100);
        for _ in 0..MAX_PAGES {
            let response: Response = request
                .send()
                .and_then(Response::error_for_status)
                .map_err(|e| e.context(what))?;
            items.extend(response.json::<Vec<T>>().map_err(|e| e.context(what))?);
            let Some(next) = response.header("link").and_then(next_link) else {
                return Ok(items);
            };
            // The token goes only where the connection points.
            if !next.starts_with(&format!("{}/", self.base)) {
                return Err(Error::fatal(format!(
                    "{what}: the next page is outside the API ({})",
                    self.base
                )));
            }
            request = self.at("GET", next);
        }
        warn!("{what}: stopped after {MAX_PAGES} pages");
        Ok(items)
    }

    fn hooks(&self, repo: &Repo) -> Result<Vec<Hook>, Error> {
        self.all(
            &format!("/repos/{repo}/hooks"),
            &format!("listing webhooks of {repo}"),
        )
    }

    fn create_hook(
        &self,
        repo: &Repo,
        url: &str,
        secret: &str,
        events: &[String],
    ) -> Result<Value, Error> {
        let body = json!({
            "name": "web",
            "active": true,
            "events": events,
            "config": {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"},
        });
        self.send(
            self.request("POST", &format!("/repos/{repo}/hooks"))
                .json(&body),
            &format!("creating a webhook on {repo}"),
        )
    }

    /// Points hook `id` at `url` with `secret` and the trigger's events again (a
    /// redeploy after the secret config variable changed must take effect).
    fn update_hook(&self, repo: &Repo, id: u64, url: &str, secret: &str) -> Result<Value, Error> {
        let body = json!({
            "active": true,
            "events": EVENTS,
            "config": {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"},
        });
        self.send(
            self.request("PATCH", &format!("/repos/{repo}/hooks/{id}"))
                .json(&body),
            &format!("updating webhook {id} of {repo}"),
        )
    }

    /// Deletes hook `id`; `false` when it was already gone.
    fn delete_hook(&self, repo: &Repo, id: u64) -> Result<bool, Error> {
        let what = format!("deleting webhook {id} of {repo}");
        let response = self
            .request("DELETE", &format!("/repos/{repo}/hooks/{id}"))
            .send()
            .map_err(|e| e.context(&what))?;
        if response.status == 404 {
            return Ok(false);
        }
        response.error_for_status().map_err(|e| e.context(&what))?;
        Ok(true)
    }
}

/// The URL of `link: <url>; rel="next"`, GitHub's pagination.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|param| matches!(param.trim(), "rel=\"next\"" | "rel=next"));
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| url.to_string())
    })
}

/// A repository's `owner/name`, checked so it can only ever address one repository's
/// path (no `..`, slashes or query characters from the input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Repo(String);

impl Repo {
    pub fn parse(full_name: &str) -> Result<Self, Error> {
        let segment = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        match full_name.trim().split_once('/') {
            Some((owner, name)) if segment(owner) && segment(name) => {
                Ok(Self(format!("{owner}/{name}")))
            }
            _ => Err(Error::invalid_input(format!(
                "`{full_name}` is not a repository of the form `owner/name`"
            ))),
        }
    }
}

impl TryFrom<String> for Repo {
    type Error = Error;

    fn try_from(value: String) -> Result<Self, Error> {
        Self::parse(&value)
    }
}

impl From<Repo> for String {
    fn from(repo: Repo) -> String {
        repo.0
    }
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the API says about a webhook, as far as this component cares.
#[derive(Debug, Deserialize)]
struct Hook {
    id: u64,
    #[serde(default)]
    config: HookConfig,
}

#[derive(Debug, Default, Deserialize)]
struct HookConfig {
    #[serde(default)]
    url: Option<String>,
}

impl Hook {
    fn targets(&self, urls: &[String]) -> bool {
        self.config
            .url
            .as_ref()
            .is_some_and(|url| urls.contains(url))
    }
}

/// An issue of a repository.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct IssueInput {
    /// Repository, as `owner/name`
    pub repo: String,
    /// Issue number
    pub number: u64,
}

/// A comment to post on an issue.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CommentInput {
    /// Repository, as `owner/name`
    pub repo: String,
    /// Issue number
    pub number: u64,
    /// Comment text (Markdown)
    pub body: String,
}

/// A repository webhook to create.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WebhookInput {
    /// Repository, as `owner/name`
    pub repo: String,
    /// URL GitHub delivers events to
    pub url: String,
    /// Secret GitHub signs deliveries with (`x-hub-signature-256`)
    pub secret: String,
    /// Events to deliver
    #[serde(default = "default_events")]
    pub events: Vec<String>,
}

fn default_events() -> Vec<String> {
    EVENTS.map(str::to_string).to_vec()
}

/// A repository.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RepoInput {
    /// Repository, as `owner/name`
    pub repo: String,
}

fn get_issue(ctx: &mut Context, input: IssueInput) -> Result<Value, Error> {
    let repo = Repo::parse(&input.repo)?;
    let api = Api::new(ctx)?;
    let number = input.number;
    api.send(
        api.request("GET", &format!("/repos/{repo}/issues/{number}")),
        &format!("reading issue {repo}#{number}"),
    )
}

fn create_comment(ctx: &mut Context, input: CommentInput) -> Result<Value, Error> {
    let repo = Repo::parse(&input.repo)?;
    if input.body.trim().is_empty() {
        return Err(Error::invalid_input("`body` must not be empty"));
    }
    let api = Api::new(ctx)?;
    let number = input.number;
    let comment: Value = api.send(
        api.request("POST", &format!("/repos/{repo}/issues/{number}/comments"))
            .json(&json!({"body": input.body})),
        &format!("commenting on {repo}#{number}"),
    )?;
    info!(
        fields = json!({"repo": repo, "issue": number, "comment": comment["id"]}),
        "commented on {repo}#{number}"
    );
    Ok(comment)
}

fn close_issue(ctx: &mut Context, input: IssueInput) -> Result<Value, Error> {
    let repo = Repo::parse(&input.repo)?;
    let api = Api::new(ctx)?;
    let number = input.number;
    let issue = api.send(
        api.request("PATCH", &format!("/repos/{repo}/issues/{number}"))
            .json(&json!({"state": "closed"})),
        &format!("closing {repo}#{number}"),
    )?;
    info!("closed {repo}#{number}");
    Ok(issue)
}

fn create_webhook(ctx: &mut Context, input: WebhookInput) -> Result<Value, Error> {
    let repo = Repo::parse(&input.repo)?;
    if input.events.is_empty() {
        return Err(Error::invalid_input(
            "`events` must name at least one event",
        ));
    }
    let api = Api::new(ctx)?;
    let hook = api.create_hook(&repo, &input.url, &input.secret, &input.events)?;
    info!(
        fields = json!({"hook": hook["id"]}),
        "created a webhook on {repo}"
    );
    Ok(hook)
}

fn list_webhooks(ctx: &mut Context, input: RepoInput) -> Result<Vec<Value>, Error> {
    let repo = Repo::parse(&input.repo)?;
    let api = Api::new(ctx)?;
    api.all(
        &format!("/repos/{repo}/hooks"),
        &format!("listing webhooks of {repo}"),
    )
}

/// The webhook URLs of every flow of this instance.
fn instance_urls(ctx: &Context) -> Vec<String> {
    ctx.webhook_urls()
        .iter()
        .map(|(_, url)| url.clone())
        .collect()
}

/// Deletes the repository's webhooks that deliver to this instance, and only those:
/// other hooks belong to other apps (the seed's warning).
fn delete_instance_webhooks(ctx: &mut Context, input: RepoInput) -> Result<Value, Error> {
    let repo = Repo::parse(&input.repo)?;
    let urls = instance_urls(ctx);
    let api = Api::new(ctx)?;
    let mut deleted = Vec::new();
    for hook in api.hooks(&repo)? {
        if hook.targets(&urls) && api.delete_hook(&repo, hook.id)? {
            deleted.push(hook.id);
        }
    }
    info!(
        fields = json!({"repo": repo, "deleted": deleted}),
        "deleted {} webhook(s) of this instance on {repo}",
        deleted.len()
    );
    Ok(json!({ "deleted": deleted }))
}

/// Inputs of `issueEvent` (and of its instance hooks).
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct IssueEventInputs {
    /// Webhook secret; defaults to the `githubWebhookSecret` config variable
    #[serde(default)]
    pub secret: Option<String>,
}

fn webhook_secret(ctx: &Context, inputs: &IssueEventInputs) -> Result<String, Error> {
    let secret = match inputs.secret.as_deref() {
        Some(secret) if !secret.is_empty() => secret.to_string(),
        _ => ctx.require_config::<String>(SECRET_CONFIG)?,
    };
    // Anyone can sign with an empty key: that is no verification at all.
    if secret.is_empty() {
        return Err(Error::invalid_input(format!(
            "the webhook secret (`secret` input or `{SECRET_CONFIG}` config variable) is empty"
        )));
    }
    Ok(secret)
}

/// The branch of a delivery, from its `x-github-event` header and `action` field.
pub fn classify(event: &str, action: &str) -> &'static str {
    match (event, action) {
        ("issues", "opened") => ISSUE_OPENED,
        ("issue_comment", "created") => ISSUE_COMMENTED,
        ("issues", "closed") => ISSUE_CLOSED,
        _ => OTHER,
    }
}

/// Decides about a delivery once the secret is known: pure, so unit tests check it
/// natively.
pub fn decide(secret: &str, request: &Request) -> TriggerResponse {
    let Some(signature) = request.header("x-hub-signature-256") else {
        return TriggerResponse::reject(401, "missing x-hub-signature-256 signature");
    };
    if !verify_github_signature(secret, &request.body, signature) {
        return TriggerResponse::reject(401, "invalid signature");
    }
    let event = request.header("x-github-event").unwrap_or_default();
    // GitHub pings a hook when it is created: answer it, without running the flow.
    if event == "ping" {
        return TriggerResponse::respond(HttpResponse::new(200).text("pong"));
    }
    let Ok(body) = request.json::<Value>() else {
        return TriggerResponse::reject(400, "the body is not JSON");
    };
    let action = body
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    TriggerResponse::accept_request(request).branch(classify(event, action))
}

fn issue_event(
    ctx: &mut Context,
    request: &Request,
    inputs: IssueEventInputs,
) -> Result<TriggerResponse, Error> {
    let secret = webhook_secret(ctx, &inputs)?;
    let response = decide(&secret, request);
    let event = request.header("x-github-event").unwrap_or("unknown");
    if response.is_accepted() {
        debug!("accepted a GitHub `{event}` delivery");
    } else {
        warn!("answered a GitHub `{event}` delivery without running the flow");
    }
    Ok(response)
}

/// The webhook this flow's deploy hook registered, remembered in instance state.
#[derive(Debug, Serialize, Deserialize)]
struct DeployedHook {
    id: u64,
    repo: Repo,
    url: String,
}

/// Instance-state key of the hook of the current flow (an instance may deploy the
/// trigger in several flows, each with its own URL).
fn hook_key(ctx: &Context) -> String {
    format!("github:webhook:{}", ctx.flow_name())
}

/// Registers the flow's webhook URL on the configured repository. Idempotent: a hook
/// that already delivers to the URL is reused (and given the current secret), extra
/// copies are deleted, and the hook of an earlier deploy to another repository or URL
/// goes.
fn on_deploy(ctx: &mut Context, inputs: IssueEventInputs) -> Result<(), Error> {
    let repo = Repo::parse(&ctx.require_config::<String>(REPOSITORY_CONFIG)?)?;
    let url = ctx.own_webhook_url()?.to_string();
    let secret = webhook_secret(ctx, &inputs)?;
    let api = Api::new(ctx)?;
    let key = hook_key(ctx);
    let remembered: Option<DeployedHook> = ctx.instance_state().get(&key)?;
    let hooks = api.hooks(&repo)?;
    let mut ours = hooks
        .iter()
        .filter(|hook| hook.targets(std::slice::from_ref(&url)));
    let id = match ours.next() {
        Some(hook) => {
            api.update_hook(&repo, hook.id, &url, &secret)?;
            info!("reusing webhook {} of {repo} for {url}", hook.id);
            hook.id
        }
        None => {
            let created: Hook =
                serde_json::from_value(api.create_hook(&repo, &url, &secret, &default_events())?)
                    .map_err(|e| Error::fatal(format!("GitHub's new webhook has no id: {e}")))?;
            info!("created webhook {} of {repo} for {url}", created.id);
            created.id
        }
    };
    for duplicate in ours {
        api.delete_hook(&repo, duplicate.id)?;
        info!("deleted duplicate webhook {} of {repo}", duplicate.id);
    }
    // The hook an earlier deploy made, when it is not this one: the repository or the
    // flow's URL changed since.
    if let Some(old) = remembered
        && (old.repo != repo || old.id != id)
    {
        api.delete_hook(&old.repo, old.id)?;
        info!(
            "deleted webhook {} of {}, which delivered to {}",
            old.id, old.repo, old.url
        );
    }
    ctx.instance_state()
        .set(&key, &DeployedHook { id, repo, url })?;
    Ok(())
}

/// Deletes the flow's webhook: the remembered one and any other delivering to the
/// flow's URL. A hook already gone is fine.
fn on_remove(ctx: &mut Context, _inputs: IssueEventInputs) -> Result<(), Error> {
    let key = hook_key(ctx);
    let remembered: Option<DeployedHook> = ctx.instance_state().get(&key)?;
    let repo = match &remembered {
        Some(hook) => hook.repo.clone(),
        None => match ctx.config_str(REPOSITORY_CONFIG)? {
            Some(repo) => Repo::parse(&repo)?,
            None => {
                warn!("no webhook remembered and no `{REPOSITORY_CONFIG}`: nothing to remove");
                return Ok(());
            }
        },
    };
    let mut urls: Vec<String> = ctx
        .webhook_url(ctx.flow_name())
        .map(str::to_string)
        .into_iter()
        .collect();
    urls.extend(remembered.as_ref().map(|hook| hook.url.clone()));
    let api = Api::new(ctx)?;
    let mut ids: Vec<u64> = remembered
        .as_ref()
        .map(|hook| hook.id)
        .into_iter()
        .collect();
    for hook in api.hooks(&repo)? {
        if hook.targets(&urls) && !ids.contains(&hook.id) {
            ids.push(hook.id);
        }
    }
    let mut deleted = 0;
    for id in ids {
        if api.delete_hook(&repo, id)? {
            deleted += 1;
        }
    }
    ctx.instance_state().delete(&key)?;
    info!("deleted {deleted} webhook(s) of {repo}");
    Ok(())
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
}

/// The token's repositories, for the config wizard's dropdown of `githubRepository`.
fn repositories(ctx: &mut Context, _input: NoInput) -> Result<Vec<PicklistItem>, Error> {
    let api = Api::new(ctx)?;
    let mut repositories: Vec<Repository> = api.all("/user/repos", "listing repositories")?;
    repositories.sort_by_key(|repo| repo.full_name.to_lowercase());
    Ok(repositories
        .into_iter()
        .map(|repo| PicklistItem::new(&repo.full_name, &repo.full_name))
        .collect())
}

/// The declaration: the component's one registration point.
pub fn component() -> Component {
    Component::new("github", "0.1.0")
        .label("GitHub")
        .description("Issues, comments and repository webhooks of GitHub.")
        .connection(
            ConnectionType::new(CONNECTION, "oauth2")
                .label("GitHub OAuth 2.0")
                .description("A GitHub OAuth app's user token, sent as a bearer token.")
                .inputs::<GithubFields>()
                // The host runs the authorization and refreshes the token; the tenant's
                // connection template holds the OAuth app's client id and secret.
                .oauth2(
                    OAuth2::authorization_code(
                        "https://github.com/login/oauth/authorize",
                        "https://github.com/login/oauth/access_token",
                    )
                    .scopes("repo admin:repo_hook")
                    .pkce()
                    .client_auth(ClientAuth::Body),
                ),
        )
        .action(
            Action::new("getIssue", get_issue)
                .label("Get issue")
                .description("Reads an issue of a repository."),
        )
        .action(
            Action::new("createComment", create_comment)
                .label("Create comment")
                .description("Comments on an issue; returns the created comment."),
        )
        .action(
            Action::new("closeIssue", close_issue)
                .label("Close issue")
                .description("Closes an issue; returns the issue."),
        )
        .action(
            Action::new("createWebhook", create_webhook)
                .label("Create webhook")
                .description("Creates a repository webhook with a signing secret."),
        )
        .action(
            Action::new("listWebhooks", list_webhooks)
                .label("List webhooks")
                .description("Lists a repository's webhooks."),
        )
        .action(
            Action::new("deleteInstanceWebhooks", delete_instance_webhooks)
                .label("Delete instance webhooks")
                .description("Deletes the repository's webhooks that deliver to this instance's webhook URLs, and no others."),
        )
        .trigger(
            Trigger::new("issueEvent", issue_event)
                .label("Issue event")
                .description("Runs the flow for signed issue and comment deliveries of the configured repository; its deploy hook creates the webhook and its remove hook deletes it.")
                .branches([ISSUE_OPENED, ISSUE_COMMENTED, ISSUE_CLOSED, OTHER])
                .on_deploy(on_deploy)
                .on_remove(on_remove),
        )
        .data_source(
            DataSource::new("repositories", repositories)
                .label("Repositories")
                .description("The repositories the connection's token can see, for a dropdown.")
                .kind(DataSourceType::Picklist),
        )
}

sluice_sdk::export_component!(component);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::hmac::sign_github;

    #[test]
    fn declaration_is_valid() {
        assert_eq!(component().validate(), Ok(()));
        let manifest = component().manifest();
        assert_eq!(
            manifest["triggers"]["issueEvent"]["staticBranchNames"],
            json!([ISSUE_OPENED, ISSUE_COMMENTED, ISSUE_CLOSED, OTHER])
        );
        assert_eq!(manifest["triggers"]["issueEvent"]["hasInstanceHooks"], true);
        assert_eq!(manifest["connections"][0]["kind"], "oauth2");
        assert_eq!(
            manifest["connections"][0]["inputs"]["properties"]["apiBaseUrl"]["default"],
            DEFAULT_API
        );
        assert_eq!(
            manifest["actions"]["createComment"]["inputs"]["required"],
            json!(["repo", "number", "body"])
        );
    }

    #[test]
    fn repositories_are_checked() {
        assert_eq!(
            Repo::parse(" acme/widgets ").unwrap().to_string(),
            "acme/widgets"
        );
        assert_eq!(Repo::parse("a-b/c.d_e").unwrap().to_string(), "a-b/c.d_e");
        for bad in [
            "acme",
            "acme/",
            "/x",
            "acme/../x",
            "a/b/c",
            "a/..",
            "a/b?x=1",
            "a b/c",
            "",
        ] {
            assert_eq!(
                Repo::parse(bad).unwrap_err().kind(),
                "invalid-input",
                "{bad}"
            );
        }
    }

    #[test]
    fn pagination_links() {
        let header = r#"<https://api.github.com/user/repos?page=2>; rel="next", <https://api.github.com/user/repos?page=5>; rel="last""#;
        assert_eq!(
            next_link(header).as_deref(),
            Some("https://api.github.com/user/repos?page=2")
        );
        assert_eq!(next_link(r#"<https://h/x?page=1>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn classification() {
        assert_eq!(classify("issues", "opened"), ISSUE_OPENED);
        assert_eq!(classify("issues", "closed"), ISSUE_CLOSED);
        assert_eq!(classify("issue_comment", "created"), ISSUE_COMMENTED);
        assert_eq!(classify("issue_comment", "edited"), OTHER);
        assert_eq!(classify("issues", "reopened"), OTHER);
        assert_eq!(classify("push", ""), OTHER);
    }

    #[test]
    fn decisions() {
        let signed = |event: &str, body: &str, secret: &str| {
            Request::new("POST", body.as_bytes().to_vec())
                .with_header("x-github-event", event)
                .with_header("x-hub-signature-256", sign_github(secret, body))
        };
        let opened = r#"{"action":"opened","issue":{"number":1}}"#;
        assert!(decide("s", &signed("issues", opened, "s")).is_accepted());
        assert!(!decide("s", &signed("issues", opened, "t")).is_accepted());
        assert!(!decide("s", &Request::new("POST", opened)).is_accepted());
        assert!(!decide("s", &signed("ping", r#"{"zen":"x"}"#, "s")).is_accepted());
        assert!(!decide("s", &signed("issues", "not json", "s")).is_accepted());
    }
}
