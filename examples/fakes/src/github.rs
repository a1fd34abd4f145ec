//! A fake GitHub REST API: repositories, issues, issue comments and repository
//! webhooks, plus signed `issues` / `issue_comment` deliveries
//! (`x-hub-signature-256: sha256=<hex>`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Server, WebhookEvent, authorized, hmac_sha256, not_found, unauthorized};

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
    token: String,
    /// The login the API's own comments are attributed to (the OAuth user).
    bot_login: String,
    data: Mutex<Data>,
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fake GitHub. Repositories are `owner/name` strings.
pub struct FakeGithub {
    server: Server,
    shared: Arc<Shared>,
}

impl FakeGithub {
    /// Starts the fake, accepting `token` as the OAuth token of user `sluice-bot`.
    pub async fn start(token: &str) -> Self {
        let shared = Arc::new(Shared {
            token: token.to_string(),
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
        FakeGithub {
            server: Server::start(router).await,
            shared,
        }
    }

    /// Base URL of the API, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
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

async fn list_repos(State(shared): SharedState, headers: HeaderMap) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
    }
    let repos: Vec<Value> = shared
        .data()
        .repos
        .iter()
        .enumerate()
        .map(|(index, repo)| {
            let mut value = repo_json(repo);
            value["id"] = json!(index + 1);
            value
        })
        .collect();
    Json(repos).into_response()
}

async fn get_issue(
    State(shared): SharedState,
    headers: HeaderMap,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
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
    if !authorized(&headers, &shared.token) {
        return unauthorized();
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
    if !authorized(&headers, &shared.token) {
        return unauthorized();
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
    if !authorized(&headers, &shared.token) {
        return unauthorized();
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
    if !authorized(&headers, &shared.token) {
        return unauthorized();
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
    if !authorized(&headers, &shared.token) {
        return unauthorized();
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
    if !authorized(&headers, &shared.token) {
        return unauthorized();
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
