//! A fake GitHub REST API: repositories, issues, issue comments and repository
//! webhooks, plus signed `issues` / `issue_comment` deliveries
//! (`x-hub-signature-256: sha256=<hex>`). Requests must carry a token of its
//! [`TokenRegistry`]: static, or issued by the [`FakeOAuth`](crate::FakeOAuth) provider.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Server, TokenRegistry, WebhookEvent, bearer, hmac_sha256, not_found};

/// A repository webhook, as created through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hook {
    pub id: u64,
    pub repo: String,
    pub url: String,
    pub secret: Option<String>,
    pub events: Vec<String>,
}

/// An issue comment, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comment {
    pub id: u64,
    pub repo: String,
    pub issue: u64,
    pub body: String,
    pub author: String,
}

#[derive(Debug, Clone, Serialize)]
struct Issue {
    number: u64,
    title: String,
    body: String,
    state: String,
    author: String,
}

#[derive(Default)]
struct Data {
    repos: Vec<String>,
    issues: BTreeMap<(String, u64), Issue>,
    comments: Vec<Comment>,
    hooks: Vec<Hook>,
    next_id: u64,
}

struct Shared {
    /// The tokens requests may carry.
    tokens: TokenRegistry,
    /// The login the API's own comments are attributed to (the OAuth user).
    bot_login: String,
    data: Mutex<Data>,
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// GitHub's own 401 answer to a request without a valid token, if it has none.
    fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        match bearer(headers) {
            None => Some(unauthorized("Requires authentication")),
            Some(token) if self.tokens.is_valid(token) => None,
            // Unknown, expired and revoked tokens look the same to the caller.
            Some(_) => Some(unauthorized("Bad credentials")),
        }
    }
}

/// GitHub's 401 body.
fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": "401",
        })),
    )
        .into_response()
}

/// The fake GitHub. Repositories are `owner/name` strings.
pub struct FakeGithub {
    server: Server,
    shared: Arc<Shared>,
}

impl FakeGithub {
    /// Starts the fake, accepting the static `token` as the OAuth token of user
    /// `sluice-bot`.
    pub async fn start(token: &str) -> Self {
        Self::start_with_registry(&TokenRegistry::with_static(token)).await
    }

    /// Starts the fake, accepting the valid tokens of `tokens` (a clone of the
    /// registry of a [`FakeOAuth`](crate::FakeOAuth), so that its access tokens work
    /// here until they expire or are revoked) as tokens of user `sluice-bot`.
    pub async fn start_with_registry(tokens: &TokenRegistry) -> Self {
        Self::start_on(0, tokens)
            .await
            .expect("binding a loopback port")
    }

    /// [`FakeGithub::start_with_registry`] on loopback port `port` (0: any free port).
    pub async fn start_on(port: u16, tokens: &TokenRegistry) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            tokens: tokens.clone(),
            bot_login: "sluice-bot".into(),
            data: Mutex::new(Data {
                next_id: 1000,
                ..Data::default()
            }),
        });
        let router = Router::new()
            .route("/user/repos", get(list_repos))
            .route(
                "/repos/{owner}/{repo}/issues/{number}",
                get(get_issue).patch(update_issue),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                post(create_comment),
            )
            .route(
                "/repos/{owner}/{repo}/hooks",
                get(list_hooks).post(create_hook),
            )
            .route(
                "/repos/{owner}/{repo}/hooks/{id}",
                axum::routing::patch(update_hook).delete(delete_hook),
            )
            .with_state(Arc::clone(&shared));
        Ok(FakeGithub {
            server: Server::bind(port, router).await?,
            shared,
        })
    }

    /// Base URL of the API, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The registry of the tokens the fake accepts (a clone sharing its state).
    pub fn registry(&self) -> TokenRegistry {
        self.shared.tokens.clone()
    }

    /// Adds a repository the token can see.
    pub fn add_repo(&self, full_name: &str) {
        self.shared.data().repos.push(full_name.to_string());
    }

    /// Comments on an issue, oldest first.
    pub fn comments(&self, repo: &str, issue: u64) -> Vec<Comment> {
        let data = self.shared.data();
        data.comments
            .iter()
            .filter(|comment| comment.repo == repo && comment.issue == issue)
            .cloned()
            .collect()
    }

    /// The state (`open` or `closed`) of an issue.
    pub fn issue_state(&self, repo: &str, issue: u64) -> Option<String> {
        let data = self.shared.data();
        data.issues
            .get(&(repo.to_string(), issue))
            .map(|issue| issue.state.clone())
    }

    /// Webhooks of every repository.
    pub fn hooks(&self) -> Vec<Hook> {
        self.shared.data().hooks.clone()
    }

    /// A webhook someone else set up on `repo` (another app's, or one made by hand),
    /// as if created through the API.
    pub fn add_hook(&self, repo: &str, url: &str, secret: Option<&str>) -> Hook {
        let mut data = self.shared.data();
        data.next_id += 1;
        let hook = Hook {
            id: data.next_id,
            repo: repo.into(),
            url: url.into(),
            secret: secret.map(str::to_string),
            events: vec!["push".into()],
        };
        data.hooks.push(hook.clone());
        hook
    }

    /// Someone opens issue `number`: the fake records it and returns the signed
    /// `issues`/`opened` delivery.
    pub fn open_issue(
        &self,
        repo: &str,
        number: u64,
        title: &str,
        body: &str,
        author: &str,
        secret: &str,
    ) -> WebhookEvent {
        let issue = Issue {
            number,
            title: title.into(),
            body: body.into(),
            state: "open".into(),
            author: author.into(),
        };
        self.shared
            .data()
            .issues
            .insert((repo.to_string(), number), issue.clone());
        delivery(
            "issues",
            secret,
            json!({"action": "opened", "issue": issue_json(&issue), "repository": repo_json(repo), "sender": {"login": author}}),
        )
    }

    /// Someone comments on issue `number` (on the GitHub side): the fake stores the
    /// comment and returns the signed `issue_comment`/`created` delivery.
    pub fn comment_on_issue(
        &self,
        repo: &str,
        number: u64,
        body: &str,
        author: &str,
        secret: &str,
    ) -> WebhookEvent {
        let (comment, issue) = {
            let mut data = self.shared.data();
            data.next_id += 1;
            let comment = Comment {
                id: data.next_id,
                repo: repo.into(),
                issue: number,
                body: body.into(),
                author: author.into(),
            };
            data.comments.push(comment.clone());
            (
                comment,
                data.issues.get(&(repo.to_string(), number)).cloned(),
            )
        };
        let issue = issue
            .map(|issue| issue_json(&issue))
            .unwrap_or_else(|| json!({"number": number}));
        delivery(
            "issue_comment",
            secret,
            json!({"action": "created", "issue": issue, "comment": comment_json(&comment), "repository": repo_json(repo), "sender": {"login": author}}),
        )
    }

    /// The delivery GitHub sends for a comment the API created (e.g. by the sync itself).
    pub fn redeliver_comment(&self, comment: &Comment, secret: &str) -> WebhookEvent {
        let issue = self
            .shared
            .data()
            .issues
            .get(&(comment.repo.clone(), comment.issue))
            .cloned();
        let issue = issue
            .map(|issue| issue_json(&issue))
            .unwrap_or_else(|| json!({"number": comment.issue}));
        delivery(
            "issue_comment",
            secret,
            json!({"action": "created", "issue": issue, "comment": comment_json(comment), "repository": repo_json(&comment.repo), "sender": {"login": comment.author}}),
        )
    }

    /// Someone closes issue `number`.
    pub fn close_issue(&self, repo: &str, number: u64, author: &str, secret: &str) -> WebhookEvent {
        let issue = {
            let mut data = self.shared.data();
            let issue = data
                .issues
                .entry((repo.to_string(), number))
                .or_insert_with(|| Issue {
                    number,
                    title: String::new(),
                    body: String::new(),
                    state: "open".into(),
                    author: author.into(),
                });
            issue.state = "closed".into();
            issue.clone()
        };
        delivery(
            "issues",
            secret,
            json!({"action": "closed", "issue": issue_json(&issue), "repository": repo_json(repo), "sender": {"login": author}}),
        )
    }
}

/// GitHub's signature: `sha256=` and the hex HMAC-SHA256 of the body.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
    )
}

fn delivery(event: &str, secret: &str, payload: Value) -> WebhookEvent {
    let body = payload.to_string().into_bytes();
    WebhookEvent {
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-github-event".into(), event.into()),
            (
                "x-github-delivery".into(),
                format!(
                    "delivery-{}",
                    hex::encode(&hmac_sha256(b"id", &[&body])[..8])
                ),
            ),
            ("x-hub-signature-256".into(), sign(secret, &body)),
        ],
        body,
    }
}

fn repo_json(full_name: &str) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or(("", full_name));
    json!({"full_name": full_name, "name": name, "owner": {"login": owner}})
}

fn issue_json(issue: &Issue) -> Value {
    json!({"number": issue.number, "title": issue.title, "body": issue.body, "state": issue.state, "user": {"login": issue.author}})
}

fn comment_json(comment: &Comment) -> Value {
    json!({"id": comment.id, "body": comment.body, "user": {"login": comment.author}})
}

type SharedState = State<Arc<Shared>>;

/// `GET /user/repos`: the repositories the token can see (every repository of the
/// fake), paginated like GitHub's (`per_page` up to 100, default 30; `page` from 1;
/// a `link` header with `rel="next"` while more pages follow).
async fn list_repos(
    State(shared): SharedState,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(refused) = shared.refusal(&headers) {
        return refused;
    }
    let mut per_page = 30;
    let mut page = 1;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        // GitHub ignores values it cannot read and uses its defaults.
        match (&*key, value.parse::<usize>()) {
            ("per_page", Ok(value)) if value > 0 => per_page = value.min(100),
            ("page", Ok(value)) if value > 0 => page = value,
            _ => {}
        }
    }
    let repos = shared.data().repos.clone();
    let start = per_page.saturating_mul(page - 1);
    let items: Vec<Value> = repos
        .iter()
        .enumerate()
        .skip(start)
        .take(per_page)
        .map(|(index, repo)| {
            let mut value = repo_json(repo);
            value["id"] = json!(index + 1);
            value["private"] = json!(false);
            value["html_url"] = json!(format!("https://github.com/{repo}"));
            value["permissions"] = json!({"admin": true, "push": true, "pull": true});
            value
        })
        .collect();
    let mut response = Json(items).into_response();
    if start.saturating_add(per_page) < repos.len() {
        // Absolute, on the address the client used, as GitHub's links are.
        let host = headers
            .get("host")
            .and_then(|host| host.to_str().ok())
            .unwrap_or("127.0.0.1");
        let next = format!(
            "<http://{host}/user/repos?per_page={per_page}&page={}>; rel=\"next\"",
            page + 1
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().insert("link", value);
        }
    }
    response
}

async fn get_issue(
    State(shared): SharedState,
    headers: HeaderMap,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    if let Some(refused) = shared.refusal(&headers) {
        return refused;
    }
    match shared
        .data()
        .issues
        .get(&(format!("{owner}/{repo}"), number))
    {
        Some(issue) => Json(issue_json(issue)).into_response(),
        None => not_found("issue"),
    }
}

#[derive(Deserialize)]
struct IssueUpdate {
    state: Option<String>,
}

async fn update_issue(
    State(shared): SharedState,
    headers: HeaderMap,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(update): Json<IssueUpdate>,
) -> Response {
    if let Some(refused) = shared.refusal(&headers) {
        return refused;
    }
    let mut data = shared.data();
    let Some(issue) = data.issues.get_mut(&(format!("{owner}/{repo}"), number)) else {
        return not_found("issue");
    };
    if let Some(state) = update.state {
        issue.state = state;
    }
    Json(issue_json(issue)).into_response()
}

#[derive(Deserialize)]
struct NewComment {
    body: String,
}

async fn create_comment(
    State(shared): SharedState,
    headers: HeaderMap,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(new): Json<NewComment>,
) -> Response {
    if let Some(refused) = shared.refusal(&headers) {
        return refused;
    }
    let mut data = shared.data();
    data.next_id += 1;
    let comment = Comment {
        id: data.next_id,
        repo: format!("{owner}/{repo}"),
        issue: number,
        body: new.body,
        author: shared.bot_login.clone(),
    };
    data.comments.push(comment.clone());
    (StatusCode::CREATED, Json(comment_json(&comment))).into_response()
}

async fn list_hooks(
    State(shared): SharedState,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = shared.refusal(&headers) {
        return refused;
    }
    let repo = format!("{owner}/{repo}");
    let hooks: Vec<Value> = shared
        .data()
        .hooks
        .iter()
        .filter(|hook| hook.repo == repo)
        .map(hook_json)
        .collect();
    Json(hooks).into_response()
}

#[derive(Deserialize)]
struct NewHook {
    config: HookConfig,
    #[serde(default)]
    events: Vec<String>,
}

#[derive(Deserialize)]
struct HookConfig {
    url: String,
    secret: Option<String>,
}

async fn create_hook(
    State(shared): SharedState,
    headers: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Json(new): Json<NewHook>,
) -> Response {
    if let Some(refused) = shared.refusal(&headers) {
        return refused;
    }
    let repo = format!("{owner}/{repo}");
    let mut data = shared.data();
    if !data.repos.contains(&repo) {
        return not_found("repository");
    }
    data.next_id += 1;
    let hook = Hook {
        id: data.next_id,
        repo,
        url: new.config.url,
        secret: new.config.secret,
        events: if new.events.is_empty() {
            vec!["push".into()]
        } else {
            new.events
        },
    };
    data.hooks.push(hook.clone());
    (StatusCode::CREATED, Json(hook_json(&hook))).into_response()
}

/// `PATCH /repos/{owner}/{repo}/hooks/{id}`: what is given replaces what is stored
/// (GitHub's semantics for `config` and `events`).
#[derive(Deserialize)]
struct HookUpdate {
    config: Option<HookConfigUpdate>,
    events: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct HookConfigUpdate {
    url: Option<String>,
    secret: Option<String>,
}

async fn update_hook(
    State(shared): SharedState,
    headers: HeaderMap,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    Json(update): Json<HookUpdate>,
) -> Response {
    if let Some(refused) = shared.refusal(&headers) {
        return refused;
    }
    let repo = format!("{owner}/{repo}");
    let mut data = shared.data();
    let Some(hook) = data
        .hooks
        .iter_mut()
        .find(|hook| hook.id == id && hook.repo == repo)
    else {
        return not_found("hook");
    };
    if let Some(config) = update.config {
        if let Some(url) = config.url {
            hook.url = url;
        }
        hook.secret = config.secret;
    }
    if let Some(events) = update.events {
        hook.events = events;
    }
    Json(hook_json(hook)).into_response()
}

async fn delete_hook(
    State(shared): SharedState,
    headers: HeaderMap,
    Path((owner, repo, id)): Path<(String, String, u64)>,
) -> Response {
    if let Some(refused) = shared.refusal(&headers) {
        return refused;
    }
    let repo = format!("{owner}/{repo}");
    let mut data = shared.data();
    let before = data.hooks.len();
    data.hooks
        .retain(|hook| !(hook.id == id && hook.repo == repo));
    if data.hooks.len() == before {
        return not_found("hook");
    }
    StatusCode::NO_CONTENT.into_response()
}

fn hook_json(hook: &Hook) -> Value {
    // GitHub never returns the secret, only that one is set.
    json!({"id": hook.id, "active": true, "events": hook.events, "config": {"url": hook.url, "content_type": "json", "secret": hook.secret.as_ref().map(|_| "********")}})
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_githubs_documented_example() {
        // From GitHub's "Validating webhook deliveries" documentation.
        assert_eq!(
            super::sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
