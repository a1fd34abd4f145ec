//! A fake Zendesk Support API: tickets (with external ids), ticket comments, status
//! changes and webhooks with signing secrets, plus signed "comment added" event
//! deliveries (`x-zendesk-webhook-signature`: base64 HMAC-SHA256 of timestamp + body).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Server, WebhookEvent, authorized, hmac_sha256, not_found, unauthorized};

/// A ticket, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ticket {
    pub id: u64,
    pub subject: String,
    pub external_id: Option<String>,
    pub status: String,
}

/// A ticket comment, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketComment {
    pub id: u64,
    pub ticket: u64,
    pub body: String,
    pub public: bool,
    /// Name of the author: the API user for comments made through the API.
    pub author: String,
}

/// A webhook, as created through the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    pub secret: String,
}

#[derive(Default)]
struct Data {
    tickets: BTreeMap<u64, Ticket>,
    comments: Vec<TicketComment>,
    webhooks: Vec<Webhook>,
    /// How many times a signing secret was read through the API.
    signing_secret_reads: usize,
    next_id: u64,
}

struct Shared {
    token: String,
    api_user: String,
    data: Mutex<Data>,
    /// Requests still to refuse with 503 (an outage, see [`FakeZendesk::fail_next`]).
    outage: AtomicUsize,
    /// Requests an outage refused.
    refused: AtomicUsize,
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fake Zendesk.
pub struct FakeZendesk {
    server: Server,
    shared: Arc<Shared>,
}

impl FakeZendesk {
    /// Starts the fake, accepting `token` as the OAuth token of the API user.
    pub async fn start(token: &str) -> Self {
        Self::start_on(0, token)
            .await
            .expect("binding a loopback port")
    }

    /// [`FakeZendesk::start`] on loopback port `port` (0: any free port).
    pub async fn start_on(port: u16, token: &str) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            token: token.to_string(),
            api_user: "Sluice Integration".into(),
            data: Mutex::new(Data {
                next_id: 100,
                ..Data::default()
            }),
            outage: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/api/v2/tickets", get(find_tickets).post(create_ticket))
            .route("/api/v2/tickets/{id}", get(get_ticket).put(update_ticket))
            .route("/api/v2/tickets/{id}/comments", get(list_comments))
            .route("/api/v2/webhooks", get(list_webhooks).post(create_webhook))
            .route("/api/v2/webhooks/{id}", delete(delete_webhook))
            .route("/api/v2/webhooks/{id}/signing_secret", get(signing_secret))
            .route("/api/v2/ping", post(|| async { StatusCode::NO_CONTENT }))
            .layer(middleware::from_fn_with_state(Arc::clone(&shared), outage))
            .with_state(Arc::clone(&shared));
        Ok(FakeZendesk {
            server: Server::bind(port, router).await?,
            shared,
        })
    }

    /// Base URL of the API, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// An outage: the next `requests` API requests, whatever they are, answer
    /// `503 Service Unavailable` and change nothing.
    pub fn fail_next(&self, requests: usize) {
        self.shared.outage.store(requests, Ordering::SeqCst);
    }

    /// How many requests outages refused so far.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Every ticket, by id.
    pub fn tickets(&self) -> Vec<Ticket> {
        self.shared.data().tickets.values().cloned().collect()
    }

    /// The ticket with `external_id`, if any.
    pub fn ticket_by_external_id(&self, external_id: &str) -> Option<Ticket> {
        let data = self.shared.data();
        data.tickets
            .values()
            .find(|ticket| ticket.external_id.as_deref() == Some(external_id))
            .cloned()
    }

    /// Comments on a ticket, oldest first.
    pub fn comments(&self, ticket: u64) -> Vec<TicketComment> {
        let data = self.shared.data();
        data.comments
            .iter()
            .filter(|comment| comment.ticket == ticket)
            .cloned()
            .collect()
    }

    /// Webhooks created through the API.
    pub fn webhooks(&self) -> Vec<Webhook> {
        self.shared.data().webhooks.clone()
    }

    /// A webhook someone else set up (another app's), as if created through the API.
    pub fn add_webhook(&self, name: &str, endpoint: &str) -> Webhook {
        let mut data = self.shared.data();
        let webhook = new_webhook(&mut data, name.into(), endpoint.into());
        data.webhooks.push(webhook.clone());
        webhook
    }

    /// Gives webhook `id` a new signing secret (Zendesk's "reset signing secret"), so
    /// deliveries are signed with it from now on. Returns the new secret.
    pub fn reset_signing_secret(&self, id: &str) -> Option<String> {
        let mut data = self.shared.data();
        data.next_id += 1;
        let secret = format!(
            "secret-{}",
            hex::encode(&hmac_sha256(b"reset", &[&data.next_id.to_be_bytes()])[..12])
        );
        let webhook = data.webhooks.iter_mut().find(|webhook| webhook.id == id)?;
        webhook.secret = secret.clone();
        Some(secret)
    }

    /// How many times `GET /api/v2/webhooks/{id}/signing_secret` answered a secret.
    pub fn signing_secret_reads(&self) -> usize {
        self.shared.data().signing_secret_reads
    }

    /// An agent comments on ticket `ticket` in Zendesk: the fake stores the comment and
    /// returns the event delivery to the first webhook, signed with its secret.
    pub fn agent_comments(&self, ticket: u64, body: &str, agent: &str) -> Option<WebhookEvent> {
        let comment = {
            let mut data = self.shared.data();
            data.next_id += 1;
            let comment = TicketComment {
                id: data.next_id,
                ticket,
                body: body.into(),
                public: true,
                author: agent.into(),
            };
            data.comments.push(comment.clone());
            comment
        };
        self.comment_event(&comment)
    }

    /// The event Zendesk delivers for `comment` (also for comments the API made).
    pub fn comment_event(&self, comment: &TicketComment) -> Option<WebhookEvent> {
        let data = self.shared.data();
        let webhook = data.webhooks.first()?.clone();
        let ticket = data.tickets.get(&comment.ticket).cloned();
        drop(data);
        let detail = match ticket {
            Some(ticket) => {
                json!({"id": ticket.id.to_string(), "subject": ticket.subject, "external_id": ticket.external_id, "status": ticket.status.to_uppercase()})
            }
            None => json!({"id": comment.ticket.to_string()}),
        };
        let payload = json!({
            "type": "zen:event-type:ticket.comment_added",
            "subject": format!("zen:ticket:{}", comment.ticket),
            "detail": detail,
            "event": {"comment": {"id": comment.id.to_string(), "body": comment.body, "is_public": comment.public, "author": {"name": comment.author}}},
        });
        let body = payload.to_string().into_bytes();
        let timestamp = "2026-11-23T12:00:00Z";
        Some(WebhookEvent {
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-zendesk-webhook-id".into(), webhook.id.clone()),
                (
                    "x-zendesk-webhook-signature-timestamp".into(),
                    timestamp.into(),
                ),
                (
                    "x-zendesk-webhook-signature".into(),
                    sign(&webhook.secret, timestamp, &body),
                ),
            ],
            body,
        })
    }
}

/// Zendesk's signature: base64 of HMAC-SHA256 over the timestamp followed by the body.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
        secret.as_bytes(),
        &[timestamp.as_bytes(), body],
    ))
}

type SharedState = State<Arc<Shared>>;

fn ticket_json(ticket: &Ticket) -> Value {
    json!({"id": ticket.id, "subject": ticket.subject, "external_id": ticket.external_id, "status": ticket.status})
}

#[derive(Deserialize)]
struct TicketQuery {
    external_id: Option<String>,
}

/// Refuses the request with 503 while an outage lasts.
async fn outage(State(shared): SharedState, request: Request, next: Next) -> Response {
    let refuse = shared
        .outage
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if refuse {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            Json(json!({"error": "ServiceUnavailable", "description": "Zendesk is down for maintenance"})),
        )
            .into_response();
    }
    next.run(request).await
}

async fn find_tickets(
    State(shared): SharedState,
    headers: HeaderMap,
    Query(query): Query<TicketQuery>,
) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
    }
    let data = shared.data();
    let tickets: Vec<Value> = data
        .tickets
        .values()
        .filter(|ticket| query.external_id.is_none() || ticket.external_id == query.external_id)
        .map(ticket_json)
        .collect();
    Json(json!({"count": tickets.len(), "tickets": tickets})).into_response()
}

#[derive(Deserialize)]
struct TicketEnvelope {
    ticket: TicketFields,
}

#[derive(Deserialize)]
struct TicketFields {
    subject: Option<String>,
    external_id: Option<String>,
    status: Option<String>,
    comment: Option<CommentFields>,
}

#[derive(Deserialize)]
struct CommentFields {
    body: String,
    #[serde(default = "public_by_default")]
    public: bool,
}

fn public_by_default() -> bool {
    true
}

async fn create_ticket(
    State(shared): SharedState,
    headers: HeaderMap,
    Json(envelope): Json<TicketEnvelope>,
) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
    }
    let fields = envelope.ticket;
    let Some(comment) = fields.comment else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "RecordInvalid", "description": "Description: cannot be blank"})),
        )
            .into_response();
    };
    let mut data = shared.data();
    data.next_id += 1;
    let ticket = Ticket {
        id: data.next_id,
        subject: fields.subject.unwrap_or_default(),
        external_id: fields.external_id,
        status: fields.status.unwrap_or_else(|| "new".into()),
    };
    data.next_id += 1;
    let first = TicketComment {
        id: data.next_id,
        ticket: ticket.id,
        body: comment.body,
        public: comment.public,
        author: shared.api_user.clone(),
    };
    data.comments.push(first);
    data.tickets.insert(ticket.id, ticket.clone());
    (
        StatusCode::CREATED,
        Json(json!({"ticket": ticket_json(&ticket)})),
    )
        .into_response()
}

async fn get_ticket(
    State(shared): SharedState,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
    }
    match shared.data().tickets.get(&id) {
        Some(ticket) => Json(json!({"ticket": ticket_json(ticket)})).into_response(),
        None => not_found("ticket"),
    }
}

async fn update_ticket(
    State(shared): SharedState,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Json(envelope): Json<TicketEnvelope>,
) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
    }
    let mut data = shared.data();
    if !data.tickets.contains_key(&id) {
        return not_found("ticket");
    }
    if let Some(comment) = envelope.ticket.comment {
        data.next_id += 1;
        let comment = TicketComment {
            id: data.next_id,
            ticket: id,
            body: comment.body,
            public: comment.public,
            author: shared.api_user.clone(),
        };
        data.comments.push(comment);
    }
    let Some(ticket) = data.tickets.get_mut(&id) else {
        return not_found("ticket");
    };
    if let Some(status) = envelope.ticket.status {
        ticket.status = status;
    }
    if let Some(subject) = envelope.ticket.subject {
        ticket.subject = subject;
    }
    Json(json!({"ticket": ticket_json(ticket)})).into_response()
}

async fn list_comments(
    State(shared): SharedState,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
    }
    let data = shared.data();
    if !data.tickets.contains_key(&id) {
        return not_found("ticket");
    }
    let comments: Vec<Value> = data
        .comments
        .iter()
        .filter(|comment| comment.ticket == id)
        .map(|comment| json!({"id": comment.id, "body": comment.body, "public": comment.public, "author": {"name": comment.author}}))
        .collect();
    Json(json!({"comments": comments})).into_response()
}

#[derive(Deserialize)]
struct WebhookEnvelope {
    webhook: WebhookFields,
}

#[derive(Deserialize)]
struct WebhookFields {
    name: String,
    endpoint: String,
}

async fn create_webhook(
    State(shared): SharedState,
    headers: HeaderMap,
    Json(envelope): Json<WebhookEnvelope>,
) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
    }
    let mut data = shared.data();
    let webhook = new_webhook(&mut data, envelope.webhook.name, envelope.webhook.endpoint);
    data.webhooks.push(webhook.clone());
    (
        StatusCode::CREATED,
        Json(json!({"webhook": {"id": webhook.id, "name": webhook.name, "endpoint": webhook.endpoint, "status": "active"}})),
    )
        .into_response()
}

fn new_webhook(data: &mut Data, name: String, endpoint: String) -> Webhook {
    data.next_id += 1;
    let id = format!("01WEBHOOK{}", data.next_id);
    Webhook {
        secret: format!(
            "secret-{}",
            hex::encode(&hmac_sha256(b"secret", &[id.as_bytes()])[..12])
        ),
        id,
        name,
        endpoint,
    }
}

async fn list_webhooks(State(shared): SharedState, headers: HeaderMap) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
    }
    let webhooks: Vec<Value> = shared
        .data()
        .webhooks
        .iter()
        .map(|webhook| json!({"id": webhook.id, "name": webhook.name, "endpoint": webhook.endpoint, "status": "active"}))
        .collect();
    Json(json!({"webhooks": webhooks})).into_response()
}

async fn delete_webhook(
    State(shared): SharedState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
    }
    let mut data = shared.data();
    let before = data.webhooks.len();
    data.webhooks.retain(|webhook| webhook.id != id);
    if data.webhooks.len() == before {
        return not_found("webhook");
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn signing_secret(
    State(shared): SharedState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers, &shared.token) {
        return unauthorized();
    }
    let mut data = shared.data();
    let Some(secret) = data
        .webhooks
        .iter()
        .find(|webhook| webhook.id == id)
        .map(|webhook| webhook.secret.clone())
    else {
        return not_found("webhook");
    };
    data.signing_secret_reads += 1;
    Json(json!({"signing_secret": {"algorithm": "SHA256", "secret": secret}})).into_response()
}
