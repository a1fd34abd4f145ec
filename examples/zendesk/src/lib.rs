//! `zendesk`: an example connector for Zendesk Support over an OAuth connection: ticket
//! and webhook actions, and the `ticketEvent` trigger, which verifies deliveries with the
//! webhook's signing secret (cached in instance state) and whose hooks manage its webhook.

use std::time::Duration;

use serde::de::DeserializeOwned;
use sluice_sdk::hmac::verify_zendesk_signature;
use sluice_sdk::prelude::*;
use sluice_sdk::{RequestBuilder, Response};

/// Config-variable key of the connection every call uses.
pub const CONNECTION: &str = "zendesk";
/// Branches of `ticketEvent`.
pub const COMMENT_ADDED: &str = "Comment Added";
pub const OTHER: &str = "Other";
/// The event type of a new ticket comment, and what the webhook subscribes to.
pub const COMMENT_ADDED_EVENT: &str = "zen:event-type:ticket.comment_added";
/// A cached signing secret younger than this is trusted: a delivery it does not
/// verify is refused without asking Zendesk again (so forged requests cannot spend
/// the account's API rate limit). An older one is re-read once, in case the secret
/// was reset.
pub const SECRET_REFRESH_MS: u64 = 60_000;
/// Pages of webhooks followed through `links.next` before a listing stops.
const MAX_PAGES: usize = 20;

/// Fields of the `zendesk` connection (the OAuth token comes from the host).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZendeskFields {
    /// Your Zendesk URL, e.g. `https://acme.zendesk.com`
    pub base_url: String,
    /// An OAuth access token created in Zendesk's Admin Center, when the platform does
    /// not supply the connection's token itself
    #[serde(default)]
    #[schemars(extend("writeOnly" = true))]
    pub access_token: Option<String>,
}

/// The API as the connection sees it: every request carries its token, and a 401/403
/// is a connection error naming it.
struct Api {
    connection: Connection,
    base: String,
    /// A token entered as a field, used when the host supplies none.
    field_token: Option<String>,
}

impl Api {
    fn new(ctx: &Context) -> Result<Self, Error> {
        let connection = ctx.connection(CONNECTION)?;
        let fields: ZendeskFields = connection.fields_as()?;
        let base = fields.base_url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::connection(
                CONNECTION,
                format!(
                    "`baseUrl` must be an http(s) URL such as https://acme.zendesk.com, not `{base}`"
                ),
            ));
        }
        let field_token = fields.access_token.filter(|token| !token.trim().is_empty());
        Ok(Self {
            connection,
            base,
            field_token,
        })
    }

    fn at(&self, method: &str, url: String) -> RequestBuilder {
        let request = Http::request(method, url);
        let request = match (self.connection.token(), &self.field_token) {
            (None, Some(token)) => request.bearer(token).connection_key(CONNECTION),
            _ => request.connection(&self.connection),
        };
        request
            .header("accept", "application/json")
            .timeout(Duration::from_secs(30))
    }

    fn request(&self, method: &str, path: &str) -> RequestBuilder {
        self.at(method, format!("{}{path}", self.base))
    }

    fn send<T: DeserializeOwned>(&self, request: RequestBuilder, what: &str) -> Result<T, Error> {
        request.send_json().map_err(|e| e.context(what))
    }

    /// Sends a request whose 404 means "not there" rather than a failure.
    fn send_optional(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<Option<Response>, Error> {
        let response = request.send().map_err(|e| e.context(what))?;
        if response.status == 404 {
            return Ok(None);
        }
        response
            .error_for_status()
            .map(Some)
            .map_err(|e| e.context(what))
    }

    /// Every webhook of the account, following `links.next` (cursor pagination).
    fn webhooks(&self) -> Result<Vec<Webhook>, Error> {
        let what = "listing webhooks";
        let mut webhooks = Vec::new();
        let mut request = self.request("GET", "/api/v2/webhooks");
        for _ in 0..MAX_PAGES {
            let page: WebhookPage = self.send(request, what)?;
            webhooks.extend(page.webhooks);
            let next = match page.links.next {
                Some(next) if page.meta.has_more.unwrap_or(true) => next,
                _ => return Ok(webhooks),
            };
            // The token goes only where the connection points.
            if !next.starts_with(&format!("{}/", self.base)) {
                return Err(Error::fatal(format!(
                    "{what}: the next page is outside the account ({})",
                    self.base
                )));
            }
            request = self.at("GET", next);
        }
        warn!("{what}: stopped after {MAX_PAGES} pages");
        Ok(webhooks)
    }

    fn create_webhook(&self, name: &str, endpoint: &str) -> Result<Webhook, Error> {
        let body = json!({"webhook": {
            "name": name,
            "endpoint": endpoint,
            "http_method": "POST",
            "request_format": "json",
            "status": "active",
            "subscriptions": [COMMENT_ADDED_EVENT],
        }});
        let created: WebhookEnvelope = self.send(
            self.request("POST", "/api/v2/webhooks").json(&body),
            &format!("creating a webhook for {endpoint}"),
        )?;
        Ok(created.webhook)
    }

    /// Deletes webhook `id`; `false` when it was already gone.
    fn delete_webhook(&self, id: &str) -> Result<bool, Error> {
        let id = WebhookId::parse(id)?;
        Ok(self
            .send_optional(
                self.request("DELETE", &format!("/api/v2/webhooks/{id}")),
                &format!("deleting webhook {id}"),
            )?
            .is_some())
    }

    /// The signing secret of webhook `id`; `None` when no such webhook exists.
    fn signing_secret(&self, id: &WebhookId) -> Result<Option<String>, Error> {
        let what = format!("reading the signing secret of webhook {id}");
        let Some(response) = self.send_optional(
            self.request("GET", &format!("/api/v2/webhooks/{id}/signing_secret")),
            &what,
        )?
        else {
            return Ok(None);
        };
        let envelope: SigningSecretEnvelope = response.json().map_err(|e| e.context(&what))?;
        Ok(Some(envelope.signing_secret.secret))
    }

    fn ticket(&self, request: RequestBuilder, what: &str) -> Result<Value, Error> {
        let envelope: TicketEnvelope = self.send(request, what)?;
        Ok(envelope.ticket)
    }
}

#[derive(Debug, Deserialize)]
struct Webhook {
    id: String,
    #[serde(default)]
    endpoint: String,
}

#[derive(Debug, Deserialize)]
struct WebhookEnvelope {
    webhook: Webhook,
}

#[derive(Debug, Deserialize)]
struct WebhookPage {
    webhooks: Vec<Webhook>,
    #[serde(default)]
    links: Links,
    #[serde(default)]
    meta: Meta,
}

#[derive(Debug, Default, Deserialize)]
struct Links {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    has_more: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct SigningSecretEnvelope {
    signing_secret: SigningSecret,
}

#[derive(Debug, Deserialize)]
struct SigningSecret {
    secret: String,
}

#[derive(Debug, Deserialize)]
struct TicketEnvelope {
    ticket: Value,
}

#[derive(Debug, Deserialize)]
struct TicketList {
    tickets: Vec<Value>,
}

/// A webhook id as it may appear in a URL path: Zendesk's ids are alphanumeric
/// (`01GZ...`); anything else in a header is a forgery, never a path to request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookId(String);

impl WebhookId {
    pub fn parse(id: &str) -> Result<Self, Error> {
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(id.to_string()))
        } else {
            Err(Error::invalid_input(format!(
                "`{id}` is not a Zendesk webhook id"
            )))
        }
    }
}

impl std::fmt::Display for WebhookId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A ticket id: a number, or the numeric string Zendesk's events carry (`"123"`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TicketId {
    Number(u64),
    Text(String),
}

impl TicketId {
    pub fn get(&self) -> Result<u64, Error> {
        match self {
            TicketId::Number(id) => Ok(*id),
            TicketId::Text(text) => text.trim().parse().map_err(|_| {
                Error::invalid_input(format!("`ticketId` must be a ticket number, not `{text}`"))
            }),
        }
    }
}

/// A ticket to create.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTicketInput {
    /// Ticket subject
    pub subject: String,
    /// The ticket's first comment (its description)
    pub body: String,
    /// Id of the record in another system (`gh-13` for GitHub issue 13), to find the ticket by
    #[serde(default)]
    pub external_id: Option<String>,
}

/// A ticket to look up.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindTicketInput {
    /// The ticket's external id
    pub external_id: String,
}

/// A comment to add to a ticket.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddCommentInput {
    /// Ticket id
    pub ticket_id: TicketId,
    /// Comment text
    pub body: String,
    /// Whether the requester sees the comment (false: an internal note)
    #[serde(default = "public_by_default")]
    pub public: bool,
}

fn public_by_default() -> bool {
    true
}

/// A ticket.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketInput {
    /// Ticket id
    pub ticket_id: TicketId,
}

fn create_ticket(ctx: &mut Context, input: CreateTicketInput) -> Result<Value, Error> {
    if input.body.trim().is_empty() {
        return Err(Error::invalid_input(
            "`body` must not be empty: it is the ticket's description",
        ));
    }
    let api = Api::new(ctx)?;
    let ticket = api.ticket(
        api.request("POST", "/api/v2/tickets")
            .json(&json!({"ticket": {
                "subject": input.subject,
                "comment": {"body": input.body},
                "external_id": input.external_id,
            }})),
        "creating a ticket",
    )?;
    info!(
        fields = json!({"ticket": ticket["id"], "externalId": input.external_id}),
        "created ticket {}", ticket["id"]
    );
    Ok(ticket)
}

fn find_ticket_by_external_id(
    ctx: &mut Context,
    input: FindTicketInput,
) -> Result<Option<Value>, Error> {
    let api = Api::new(ctx)?;
    let external_id = &input.external_id;
    let list: TicketList = api.send(
        api.request("GET", "/api/v2/tickets")
            .query("external_id", external_id),
        &format!("finding the ticket with external id `{external_id}`"),
    )?;
    if list.tickets.len() > 1 {
        warn!(
            "{} tickets have external id `{external_id}`; using the first",
            list.tickets.len()
        );
    }
    Ok(list.tickets.into_iter().next())
}

fn add_comment(ctx: &mut Context, input: AddCommentInput) -> Result<Value, Error> {
    let id = input.ticket_id.get()?;
    if input.body.trim().is_empty() {
        return Err(Error::invalid_input("`body` must not be empty"));
    }
    let api = Api::new(ctx)?;
    let ticket = api.ticket(
        api.request("PUT", &format!("/api/v2/tickets/{id}"))
            .json(&json!({"ticket": {"comment": {"body": input.body, "public": input.public}}})),
        &format!("commenting on ticket {id}"),
    )?;
    info!("commented on ticket {id}");
    Ok(ticket)
}

fn close_ticket(ctx: &mut Context, input: TicketInput) -> Result<Value, Error> {
    let id = input.ticket_id.get()?;
    let api = Api::new(ctx)?;
    let ticket = api.ticket(
        api.request("PUT", &format!("/api/v2/tickets/{id}"))
            .json(&json!({"ticket": {"status": "closed"}})),
        &format!("closing ticket {id}"),
    )?;
    info!("closed ticket {id}");
    Ok(ticket)
}

/// Instance-state key of the cached signing secret of webhook `id`.
fn secret_key(id: &str) -> String {
    format!("zendesk:signingSecret:{id}")
}

/// Deletes webhook `id` and forgets its cached secret; `false` when it was gone.
fn delete_webhook(ctx: &Context, api: &Api, id: &str) -> Result<bool, Error> {
    let existed = api.delete_webhook(id)?;
    ctx.instance_state().delete(&secret_key(id))?;
    Ok(existed)
}

/// Deletes the account's webhooks that deliver to this instance, and only those:
/// other webhooks belong to other apps.
fn delete_instance_webhooks(ctx: &mut Context, _input: NoInput) -> Result<Value, Error> {
    let urls: Vec<&str> = ctx
        .webhook_urls()
        .iter()
        .map(|(_, url)| url.as_str())
        .collect();
    let api = Api::new(ctx)?;
    let mut deleted = Vec::new();
    for webhook in api.webhooks()? {
        if urls.contains(&webhook.endpoint.as_str()) && delete_webhook(ctx, &api, &webhook.id)? {
            deleted.push(webhook.id);
        }
    }
    info!(
        fields = json!({"deleted": deleted}),
        "deleted {} webhook(s) of this instance",
        deleted.len()
    );
    Ok(json!({ "deleted": deleted }))
}

/// The branch of an event, from its `type`.
pub fn classify(event_type: &str) -> &'static str {
    if event_type == COMMENT_ADDED_EVENT {
        COMMENT_ADDED
    } else {
        OTHER
    }
}

/// A signing secret as cached in instance state.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CachedSecret {
    secret: String,
    fetched_at_ms: u64,
}

fn ticket_event(
    ctx: &mut Context,
    request: &Request,
    _inputs: NoInput,
) -> Result<TriggerResponse, Error> {
    let (Some(id), Some(timestamp), Some(signature)) = (
        request.header("x-zendesk-webhook-id"),
        request.header("x-zendesk-webhook-signature-timestamp"),
        request.header("x-zendesk-webhook-signature"),
    ) else {
        return Ok(TriggerResponse::reject(
            401,
            "missing Zendesk webhook signature headers",
        ));
    };
    let Ok(id) = WebhookId::parse(id) else {
        return Ok(TriggerResponse::reject(401, "invalid webhook id"));
    };
    let verifies =
        |secret: &str| verify_zendesk_signature(secret, timestamp, &request.body, signature);
    let key = secret_key(&id.0);
    let now = ctx.started_at_ms();
    let cached: Option<CachedSecret> = ctx.instance_state().get(&key)?;
    let verified = match &cached {
        Some(cached) if verifies(&cached.secret) => true,
        Some(cached) if now.saturating_sub(cached.fetched_at_ms) < SECRET_REFRESH_MS => false,
        // No secret yet, or an old one that no longer verifies: ask Zendesk.
        _ => {
            let Some(secret) = Api::new(ctx)?.signing_secret(&id)? else {
                warn!("refused a delivery for unknown webhook {id}");
                return Ok(TriggerResponse::reject(401, "unknown webhook"));
            };
            let verified = verifies(&secret);
            ctx.instance_state().set(
                &key,
                &CachedSecret {
                    secret,
                    fetched_at_ms: now,
                },
            )?;
            debug!("cached the signing secret of webhook {id}");
            verified
        }
    };
    if !verified {
        warn!("refused a delivery for webhook {id}: invalid signature");
        return Ok(TriggerResponse::reject(401, "invalid signature"));
    }
    let Ok(body) = request.json::<Value>() else {
        return Ok(TriggerResponse::reject(400, "the body is not JSON"));
    };
    let event_type = body.get("type").and_then(Value::as_str).unwrap_or_default();
    Ok(TriggerResponse::accept_request(request).branch(classify(event_type)))
}

/// The webhook this flow's deploy hook created, remembered in instance state.
#[derive(Debug, Serialize, Deserialize)]
struct DeployedWebhook {
    id: String,
    endpoint: String,
}

/// Instance-state key of the webhook of the current flow.
fn webhook_key(ctx: &Context) -> String {
    format!("zendesk:webhook:{}", ctx.flow_name())
}

/// Creates the flow's webhook. Idempotent: a webhook already delivering to the flow's
/// URL is reused, extra copies are deleted, and a remembered webhook that delivers
/// elsewhere (the URL changed) goes.
fn on_deploy(ctx: &mut Context, _inputs: NoInput) -> Result<(), Error> {
    let endpoint = ctx.own_webhook_url()?.to_string();
    let api = Api::new(ctx)?;
    let key = webhook_key(ctx);
    let remembered: Option<DeployedWebhook> = ctx.instance_state().get(&key)?;
    let webhooks = api.webhooks()?;
    let mut ours = webhooks
        .iter()
        .filter(|webhook| webhook.endpoint == endpoint);
    let id = match ours.next() {
        Some(webhook) => {
            info!("reusing webhook {} for {endpoint}", webhook.id);
            webhook.id.clone()
        }
        None => {
            let name = format!("Sluice: {} ({})", ctx.flow_name(), ctx.instance_id());
            let created = api.create_webhook(&name, &endpoint)?;
            info!("created webhook {} for {endpoint}", created.id);
            created.id
        }
    };
    for duplicate in ours {
        delete_webhook(ctx, &api, &duplicate.id)?;
        info!("deleted duplicate webhook {}", duplicate.id);
    }
    if let Some(old) = remembered
        && old.id != id
    {
        delete_webhook(ctx, &api, &old.id)?;
        info!(
            "deleted webhook {}, which delivered to {}",
            old.id, old.endpoint
        );
    }
    ctx.instance_state()
        .set(&key, &DeployedWebhook { id, endpoint })?;
    Ok(())
}

/// Deletes the flow's webhook: the remembered one and any other delivering to the
/// flow's URL. A webhook already gone is fine.
fn on_remove(ctx: &mut Context, _inputs: NoInput) -> Result<(), Error> {
    let key = webhook_key(ctx);
    let remembered: Option<DeployedWebhook> = ctx.instance_state().get(&key)?;
    let mut endpoints: Vec<String> = ctx
        .webhook_url(ctx.flow_name())
        .map(str::to_string)
        .into_iter()
        .collect();
    endpoints.extend(remembered.as_ref().map(|webhook| webhook.endpoint.clone()));
    let api = Api::new(ctx)?;
    let mut ids: Vec<String> = remembered.map(|webhook| webhook.id).into_iter().collect();
    for webhook in api.webhooks()? {
        if endpoints.contains(&webhook.endpoint) && !ids.contains(&webhook.id) {
            ids.push(webhook.id);
        }
    }
    let mut deleted = 0;
    for id in &ids {
        if delete_webhook(ctx, &api, id)? {
            deleted += 1;
        }
    }
    ctx.instance_state().delete(&key)?;
    info!("deleted {deleted} webhook(s)");
    Ok(())
}

/// The declaration: the component's one registration point.
pub fn component() -> Component {
    Component::new("zendesk", "0.1.0")
        .label("Zendesk")
        .description("Tickets, comments and webhooks of Zendesk Support.")
        .connection(
            ConnectionType::new(CONNECTION, "oauth2")
                .label("Zendesk OAuth 2.0")
                .description("A Zendesk OAuth client's token, sent as a bearer token.")
                .inputs::<ZendeskFields>(),
        )
        .action(
            Action::new("createTicket", create_ticket)
                .label("Create ticket")
                .description("Creates a ticket whose description is `body`; returns the ticket."),
        )
        .action(
            Action::new("findTicketByExternalId", find_ticket_by_external_id)
                .label("Find ticket by external id")
                .description("Returns the ticket with the external id, or null."),
        )
        .action(
            Action::new("addComment", add_comment)
                .label("Add comment")
                .description("Adds a public comment (or an internal note) to a ticket; returns the ticket."),
        )
        .action(
            Action::new("closeTicket", close_ticket)
                .label("Close ticket")
                .description("Sets a ticket's status to closed; returns the ticket."),
        )
        .action(
            Action::new("deleteInstanceWebhooks", delete_instance_webhooks)
                .label("Delete instance webhooks")
                .description("Deletes the webhooks that deliver to this instance's webhook URLs, and no others."),
        )
        .trigger(
            Trigger::new("ticketEvent", ticket_event)
                .label("Ticket event")
                .description("Runs the flow for Zendesk webhook deliveries signed with the webhook's signing secret; its deploy hook creates the webhook and its remove hook deletes it.")
                .branches([COMMENT_ADDED, OTHER])
                .on_deploy(on_deploy)
                .on_remove(on_remove),
        )
}

sluice_sdk::export_component!(component);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_is_valid() {
        assert_eq!(component().validate(), Ok(()));
        let manifest = component().manifest();
        assert_eq!(
            manifest["triggers"]["ticketEvent"]["staticBranchNames"],
            json!([COMMENT_ADDED, OTHER])
        );
        assert_eq!(
            manifest["connections"][0]["inputs"]["required"],
            json!(["baseUrl"])
        );
        let add = &manifest["actions"]["addComment"]["inputs"];
        assert_eq!(add["required"], json!(["ticketId", "body"]));
        assert_eq!(add["properties"]["public"]["default"], json!(true));
    }

    #[test]
    fn ticket_ids() {
        let id = |v: Value| serde_json::from_value::<TicketId>(v).unwrap().get();
        assert_eq!(id(json!(12)).unwrap(), 12);
        assert_eq!(id(json!("12")).unwrap(), 12);
        assert_eq!(id(json!("twelve")).unwrap_err().kind(), "invalid-input");
        assert!(serde_json::from_value::<TicketId>(json!(-1)).is_err());
    }

    #[test]
    fn webhook_ids() {
        assert!(WebhookId::parse("01GZ3Y5W9XK8Q").is_ok());
        for bad in ["", "../tickets", "a/b", "a?b", &"x".repeat(65)] {
            assert!(WebhookId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify("zen:event-type:ticket.comment_added"),
            COMMENT_ADDED
        );
        assert_eq!(classify("zen:event-type:ticket.status_changed"), OTHER);
        assert_eq!(classify(""), OTHER);
    }
}
