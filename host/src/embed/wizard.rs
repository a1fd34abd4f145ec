//! The configuration wizard: a customer activates an integration (a draft instance),
//! connects its OAuth connections in a popup, fills the other connections' fields and
//! the config variables by type (picklists filled by their data source, with the
//! connection just made), then deploys, reconfigures, pauses or removes it. Every
//! change goes through `instances` like the API's, so the server's checks apply and
//! their errors are shown inline.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Map, Value};
use sluice_runtime::flow::{ConfigVar, ConfigVarType};

use super::error::EmbedError;
use super::page::{Layout, Nav, PagePath, render};
use super::session::EmbedSession;
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::instances::{self, ConnectionInput, DeployRequest, InstanceSettings, TokenInput};
use crate::integrations::{self, CompiledIntegration};
use crate::oauth::{self, Started};
use crate::store::instances::{Instance, InstanceStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/embed/s/{session}/integrations/{key}",
            get(integration).post(activate),
        )
        .route(
            "/embed/s/{session}/instances/{id}/configure",
            get(configure).post(save),
        )
        .route(
            "/embed/s/{session}/instances/{id}/connections/{key}/connect",
            get(connect),
        )
        .route(
            "/embed/s/{session}/instances/{id}/lifecycle",
            axum::routing::post(lifecycle),
        )
}

/// A server error for the customer: the API's message for a client mistake, nothing
/// of a server failure.
fn from_api(err: ApiError) -> EmbedError {
    match err.status {
        StatusCode::NOT_FOUND => EmbedError::NotFound(err.message),
        status if status.is_client_error() => EmbedError::BadRequest(err.message),
        _ => EmbedError::Internal(err.message),
    }
}

/// The customer's own instance `id`; another customer's is not found, like an
/// unknown one.
async fn own_instance(
    state: &AppState,
    session: &EmbedSession,
    id: &str,
) -> Result<Instance, EmbedError> {
    match state.store.get_instance(&session.tenant_id, id).await? {
        Some(instance) if instance.customer_id == session.customer_id => Ok(instance),
        _ => Err(EmbedError::NotFound("integration instance".into())),
    }
}

struct InstanceLink {
    id: String,
    name: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "embed/integration.html")]
struct IntegrationPage {
    layout: Layout,
    key: String,
    name: String,
    description: Option<String>,
    version: i64,
    instances: Vec<InstanceLink>,
}

/// The latest version of the tenant's integration `key`, with the name and
/// description its definition gives itself.
async fn latest(
    state: &AppState,
    session: &EmbedSession,
    key: &str,
) -> Result<(i64, String, Option<String>), EmbedError> {
    let version = integrations::latest_version(state, &session.tenant_id, key)
        .await
        .map_err(from_api)?;
    let row = state
        .store
        .integration_version(&session.tenant_id, key, version)
        .await?
        .ok_or_else(|| EmbedError::NotFound("integration".into()))?;
    let (name, description) = super::marketplace::title_of(&row);
    Ok((version, name, description))
}

/// `/integrations/{key}`: what the integration does, the customer's instances of it,
/// and the button that activates a new one.
async fn integration(
    session: EmbedSession,
    State(state): State<AppState>,
    PagePath((_, key)): PagePath<(String, String)>,
) -> Result<Response, EmbedError> {
    let (version, name, description) = latest(&state, &session, &key).await?;
    let instances = state
        .store
        .list_instances(&session.tenant_id, Some(&session.customer_id))
        .await?
        .into_iter()
        .filter(|instance| instance.integration_key == key)
        .map(|instance| InstanceLink {
            id: instance.id,
            name: instance.name,
            status: instance.status.as_str(),
        })
        .collect();
    render(&IntegrationPage {
        layout: Layout::for_session(&session, name.clone(), Nav::Marketplace),
        key,
        name,
        description,
        version,
        instances,
    })
}

/// Creates a draft instance of the integration for the customer and opens its wizard.
async fn activate(
    session: EmbedSession,
    State(state): State<AppState>,
    PagePath((_, key)): PagePath<(String, String)>,
) -> Result<Response, EmbedError> {
    let (version, name, _) = latest(&state, &session, &key).await?;
    let compiled = integrations::plan(&state, &session.tenant_id, &key, version)
        .await
        .map_err(from_api)?;
    // Each connection starts with what the tenant's template fixes (minus the OAuth
    // settings and secrets, which stay in the template), and the allow-list with the
    // services those fields point at (the API base URL): the data sources run with the
    // connection as soon as it is connected, before any save.
    let mut connections = BTreeMap::new();
    let mut hosts: Vec<String> = Vec::new();
    for var in &compiled.definition.config_vars {
        let Some(reference) = &var.connection else {
            continue;
        };
        let (_, declared) = oauth::connection_type(&compiled, &var.key)
            .map_err(|err| EmbedError::Internal(err.to_string()))?;
        let template = oauth::template_fields(
            &state,
            &session.tenant_id,
            &reference.component,
            &reference.key,
        )
        .await
        .map_err(|err| EmbedError::Internal(err.to_string()))?;
        let fields: Map<String, Value> = template
            .into_iter()
            .filter(|(name, _)| !oauth::settings::OVERRIDABLE.contains(&name.as_str()))
            .collect();
        for origin in fields.values().filter_map(origin_of) {
            if !hosts.contains(&origin) {
                hosts.push(origin);
            }
        }
        connections.insert(
            var.key.clone(),
            ConnectionInput {
                kind: declared
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("connection")
                    .to_string(),
                fields: Value::Object(fields),
                token: None,
            },
        );
    }
    let request = DeployRequest {
        customer_id: session.customer_id.clone(),
        integration: key,
        version: Some(version),
        draft: true,
        settings: InstanceSettings {
            name: Some(name),
            connections: Some(connections),
            allowed_hosts: Some(hosts),
            ..InstanceSettings::default()
        },
    };
    let (instance, _) = instances::deploy(&state, &session.tenant_id, request)
        .await
        .map_err(from_api)?;
    Ok(
        Redirect::to(&session.link(&format!("instances/{}/configure", instance.id)))
            .into_response(),
    )
}

/// One input of a form.
struct Input {
    /// The form field's name.
    name: String,
    label: String,
    description: Option<String>,
    /// `text`, `password`, `number`, `select`, `boolean`, `textarea`.
    kind: &'static str,
    /// The current value (never a secret's).
    value: String,
    required: bool,
    options: Vec<Choice>,
    /// Why the options could not be listed.
    options_error: Option<String>,
}

struct Choice {
    key: String,
    label: String,
    selected: bool,
}

struct ConnectionView {
    key: String,
    label: String,
    description: Option<String>,
    /// `pending`, `active`, `error`.
    status: &'static str,
    status_detail: Option<String>,
    /// An OAuth connection: a Connect button rather than fields.
    oauth: bool,
    connect_href: String,
    inputs: Vec<Input>,
}

#[derive(Template)]
#[template(path = "embed/wizard.html")]
struct WizardPage {
    layout: Layout,
    instance_id: String,
    instance_name: String,
    status: &'static str,
    status_detail: Option<String>,
    enabled: bool,
    draft: bool,
    connections: Vec<ConnectionView>,
    inputs: Vec<Input>,
    /// What the last change failed for, shown at the top and announced.
    error: Option<String>,
    notice: Option<String>,
}

fn label_of(var: &ConfigVar) -> String {
    var.label.clone().unwrap_or_else(|| var.key.clone())
}

/// The inputs of a connection: its declared input fields, minus what the template
/// fixes and, for an OAuth connection (`declared` has `oauth2`), minus its OAuth
/// settings, which are the template's business; secrets (`writeOnly` or
/// `format: password`) are never shown back.
fn connection_inputs(
    var_key: &str,
    declared: &Value,
    template: &Map<String, Value>,
    current: &Map<String, Value>,
) -> Vec<Input> {
    let is_oauth = declared.get("oauth2").is_some();
    let schema = declared.get("inputs").cloned().unwrap_or_default();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .filter(|(name, _)| {
            let fixed = template.contains_key(*name)
                || (is_oauth && oauth::settings::OVERRIDABLE.contains(&name.as_str()));
            !fixed
        })
        .map(|(name, property)| {
            let secret = is_secret(property);
            let value = if secret {
                String::new()
            } else {
                current.get(name).map(display_value).unwrap_or_default()
            };
            Input {
                name: format!("conn.{var_key}.{name}"),
                label: property
                    .get("title")
                    .and_then(Value::as_str)
                    .map_or_else(|| humanized(name), str::to_string),
                description: property
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                kind: if secret { "password" } else { "text" },
                value,
                required: required.contains(&name.as_str()),
                options: Vec::new(),
                options_error: None,
            }
        })
        .collect()
}

/// A field's key as a label: `apiBaseUrl` → "API base URL" (the SDK's schemas carry
/// descriptions, not titles).
fn humanized(key: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in key.chars() {
        if (c.is_uppercase() && !word.is_empty()) || c == '_' || c == '-' || c == ' ' {
            words.push(std::mem::take(&mut word));
        }
        if c.is_alphanumeric() {
            word.push(c);
        }
    }
    words.push(word);
    let words: Vec<String> = words
        .into_iter()
        .filter(|word| !word.is_empty())
        .enumerate()
        .map(|(index, word)| {
            let lower = word.to_lowercase();
            match lower.as_str() {
                "url" | "api" | "id" | "uri" | "oauth" => lower.to_uppercase(),
                _ if index == 0 => {
                    let mut chars = lower.chars();
                    chars
                        .next()
                        .map(|first| first.to_uppercase().chain(chars).collect())
                        .unwrap_or_default()
                }
                _ => lower,
            }
        })
        .collect();
    if words.is_empty() {
        key.to_string()
    } else {
        words.join(" ")
    }
}

fn is_secret(property: &Value) -> bool {
    property.get("writeOnly").and_then(Value::as_bool) == Some(true)
        || property.get("format").and_then(Value::as_str) == Some("password")
}

fn display_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Builds the wizard of `instance`; `submitted` keeps what the customer typed when a
/// change failed.
async fn wizard(
    state: &AppState,
    session: &EmbedSession,
    instance: &Instance,
    submitted: Option<&BTreeMap<String, String>>,
    error: Option<String>,
    notice: Option<String>,
) -> Result<WizardPage, EmbedError> {
    let compiled = integrations::instance_plan(state, instance)
        .await
        .map_err(from_api)?;
    let fields = instances::open_connections(state, instance).map_err(from_api)?;
    let grants = state
        .store
        .oauth_connections_of(&instance.tenant_id, &instance.id)
        .await?;
    let mut connections = Vec::new();
    // Whether each connection is usable, with the component it belongs to.
    let mut usable: Vec<(String, bool)> = Vec::new();
    for var in &compiled.definition.config_vars {
        let Some(reference) = &var.connection else {
            continue;
        };
        let (_, declared) = oauth::connection_type(&compiled, &var.key)
            .map_err(|err| EmbedError::Internal(err.to_string()))?;
        let is_oauth = declared.get("oauth2").is_some();
        let template = oauth::template_fields(
            state,
            &instance.tenant_id,
            &reference.component,
            &reference.key,
        )
        .await
        .map_err(|err| EmbedError::Internal(err.to_string()))?;
        let current = fields
            .iter()
            .find(|connection| connection.key == var.key)
            .and_then(|connection| connection.fields.as_object().cloned())
            .unwrap_or_default();
        let grant = grants.iter().find(|grant| grant.connection_key == var.key);
        let own = fields.iter().find(|connection| connection.key == var.key);
        let connection = oauth::connection_status(&compiled, &var.key, own, grant);
        let (status, status_detail) =
            (connection.as_str(), connection.detail().map(str::to_string));
        usable.push((
            reference.component.clone(),
            connection == oauth::ConnectionStatus::Active,
        ));
        let mut inputs = connection_inputs(&var.key, &declared, &template, &current);
        keep_submitted(&mut inputs, submitted);
        connections.push(ConnectionView {
            key: var.key.clone(),
            label: label_of(var),
            description: var.description.clone(),
            status,
            status_detail,
            oauth: is_oauth,
            connect_href: session.link(&format!(
                "instances/{}/connections/{}/connect",
                instance.id, var.key
            )),
            inputs,
        });
    }
    let mut inputs = Vec::new();
    for var in &compiled.definition.config_vars {
        if var.data_type == ConfigVarType::Connection {
            continue;
        }
        let value = instance
            .config
            .get(&var.key)
            .or(var.default_value.as_ref())
            .map(display_value)
            .unwrap_or_default();
        // A data source runs with its own component's connections: the others (the
        // Zendesk account, for GitHub's repository list) need not be set yet.
        let connected = var.data_source.as_ref().is_none_or(|source| {
            usable
                .iter()
                .filter(|(component, _)| *component == source.component)
                .all(|(_, active)| *active)
        });
        let (mut kind, options, options_error) =
            var_input(state, instance, &compiled, var, &value, connected).await;
        let mut value = value;
        let set = instance.config.contains_key(&var.key);
        if var.secret {
            // A secret is never sent back to the browser; left empty, it is kept.
            kind = "password";
            value = String::new();
        }
        let mut input = vec![Input {
            name: format!("config.{}", var.key),
            label: label_of(var),
            description: var.description.clone(),
            kind,
            value,
            required: var.default_value.is_none() && !(var.secret && set),
            options,
            options_error,
        }];
        keep_submitted(&mut input, submitted);
        inputs.extend(input);
    }
    Ok(WizardPage {
        layout: Layout::for_session(session, format!("Configure {}", instance.name), Nav::Other),
        instance_id: instance.id.clone(),
        instance_name: instance.name.clone(),
        status: instance.status.as_str(),
        status_detail: instance.status_detail.clone(),
        enabled: instance.enabled,
        draft: instance.status == InstanceStatus::Draft,
        connections,
        inputs,
        error,
        notice,
    })
}

/// Puts back what the customer typed (a failed change must not lose it), except
/// secrets, which are never echoed.
fn keep_submitted(inputs: &mut [Input], submitted: Option<&BTreeMap<String, String>>) {
    let Some(submitted) = submitted else {
        return;
    };
    for input in inputs {
        if input.kind == "password" {
            continue;
        }
        if let Some(value) = submitted.get(&input.name) {
            input.value = value.clone();
            for option in &mut input.options {
                option.selected = &option.key == value;
            }
        }
    }
}

/// The input kind of a variable, and its choices: a static picklist's values, or
/// what its data source lists once the connections are made.
async fn var_input(
    state: &AppState,
    instance: &Instance,
    compiled: &CompiledIntegration,
    var: &ConfigVar,
    value: &str,
    connected: bool,
) -> (&'static str, Vec<Choice>, Option<String>) {
    let choice = |key: String, label: String| Choice {
        selected: key == value,
        key,
        label,
    };
    if let Some(values) = &var.picklist {
        let options = values
            .iter()
            .map(|v| choice(v.clone(), v.clone()))
            .collect();
        return ("select", options, None);
    }
    if var.data_source.is_some() {
        if !connected {
            return (
                "select",
                Vec::new(),
                Some("Connect the connections above first: the choices come from them.".into()),
            );
        }
        return match crate::datasources::items(state, instance, compiled, &var.key).await {
            Ok(items) => (
                "select",
                items
                    .into_iter()
                    .map(|item| choice(item.key, item.label))
                    .collect(),
                None,
            ),
            Err(err) => ("select", Vec::new(), Some(err.message)),
        };
    }
    let kind = match var.data_type {
        ConfigVarType::Number => "number",
        ConfigVarType::Boolean => "boolean",
        ConfigVarType::Code | ConfigVarType::Json | ConfigVarType::JsonForm => "textarea",
        _ => "text",
    };
    (kind, Vec::new(), None)
}

async fn configure(
    session: EmbedSession,
    State(state): State<AppState>,
    PagePath((_, id)): PagePath<(String, String)>,
) -> Result<Response, EmbedError> {
    let instance = own_instance(&state, &session, &id).await?;
    render(&wizard(&state, &session, &instance, None, None, None).await?)
}

/// Turns the form's text into the config variable's JSON value; `None` for an empty
/// field (the default applies).
fn typed_value(var: &ConfigVar, text: &str) -> Result<Option<Value>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let label = label_of(var);
    Ok(Some(match var.data_type {
        ConfigVarType::Number => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::from))
            .map_err(|_| format!("{label} must be a number, not `{text}`"))?,
        ConfigVarType::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("{label} must be yes or no")),
        },
        ConfigVarType::Json | ConfigVarType::JsonForm => {
            serde_json::from_str(text).map_err(|err| format!("{label} is not valid JSON: {err}"))?
        }
        _ => Value::String(text.to_string()),
    }))
}

/// The origin (`scheme://host[:port]`) of a URL-valued field: a service the
/// instance's connections point at, which its egress allow-list must open.
fn origin_of(value: &Value) -> Option<String> {
    let url = url::Url::parse(value.as_str()?).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    (origin != "null").then_some(origin)
}

/// Applies the submitted form to the instance (config, connection fields, and the
/// allow-list opened to what the connections point at), then deploys it when asked.
async fn apply(
    state: &AppState,
    session: &EmbedSession,
    instance: &Instance,
    form: &BTreeMap<String, String>,
    deploy: bool,
) -> Result<Instance, String> {
    let compiled = integrations::instance_plan(state, instance)
        .await
        .map_err(|err| err.message)?;
    let mut config = BTreeMap::new();
    for var in &compiled.definition.config_vars {
        if var.data_type == ConfigVarType::Connection {
            continue;
        }
        let text = form
            .get(&format!("config.{}", var.key))
            .map(String::as_str)
            .unwrap_or_default();
        if let Some(value) = typed_value(var, text)? {
            config.insert(var.key.clone(), value);
        } else if var.secret
            && let Some(kept) = instance.config.get(&var.key)
        {
            // The page never shows a secret back: an empty field keeps it.
            config.insert(var.key.clone(), kept.clone());
        }
    }
    let mut connections = BTreeMap::new();
    let mut hosts: Vec<String> = instance.allowed_hosts.clone();
    for connection in instances::open_connections(state, instance).map_err(|err| err.message)? {
        let mut fields = connection.fields.as_object().cloned().unwrap_or_default();
        let prefix = format!("conn.{}.", connection.key);
        for (name, value) in form {
            let Some(field) = name.strip_prefix(&prefix) else {
                continue;
            };
            // An empty secret field keeps the secret it had.
            if value.is_empty() && fields.contains_key(field) {
                continue;
            }
            fields.insert(field.to_string(), Value::String(value.trim().to_string()));
        }
        for value in fields.values() {
            if let Some(origin) = origin_of(value)
                && !hosts.contains(&origin)
            {
                hosts.push(origin);
            }
        }
        connections.insert(
            connection.key.clone(),
            ConnectionInput {
                kind: connection.kind,
                fields: Value::Object(fields),
                token: connection.token.map(|token| TokenInput {
                    access_token: token.access_token,
                    token_type: token.token_type,
                    expires_at_ms: token.expires_at_ms,
                    scopes: token.scopes,
                }),
            },
        );
    }
    let settings = InstanceSettings {
        config: Some(config),
        connections: Some(connections),
        allowed_hosts: Some(hosts),
        ..InstanceSettings::default()
    };
    let (mut updated, _) = instances::update(state, &session.tenant_id, &instance.id, settings)
        .await
        .map_err(|err| err.message)?;
    if deploy {
        updated = instances::redeploy(state, &session.tenant_id, &instance.id)
            .await
            .map_err(|err| err.message)?
            .0;
    }
    Ok(updated)
}

async fn save(
    session: EmbedSession,
    State(state): State<AppState>,
    PagePath((_, id)): PagePath<(String, String)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, EmbedError> {
    let instance = own_instance(&state, &session, &id).await?;
    let form: BTreeMap<String, String> = pairs.into_iter().collect();
    let deploy = form.get("action").map(String::as_str) == Some("deploy");
    match apply(&state, &session, &instance, &form, deploy).await {
        Ok(updated) if updated.status == InstanceStatus::Failed => {
            let message = format!(
                "The integration could not be deployed: {}",
                updated
                    .status_detail
                    .as_deref()
                    .unwrap_or("a deploy step failed")
            );
            let page = wizard(&state, &session, &updated, Some(&form), Some(message), None).await?;
            Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response())
        }
        Ok(updated) => {
            let notice = if deploy || updated.status == InstanceStatus::Deployed {
                "Saved. The integration is deployed."
            } else {
                "Saved."
            };
            render(&wizard(&state, &session, &updated, None, None, Some(notice.into())).await?)
        }
        Err(message) => {
            // Show the form as typed, with the reason, over the instance as it is stored
            // now: a refused change stored nothing, but a deploy refused after its save
            // keeps what was saved.
            let current = own_instance(&state, &session, &id).await?;
            let page = wizard(&state, &session, &current, Some(&form), Some(message), None).await?;
            Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response())
        }
    }
}

/// Starts the OAuth consent for a connection: the popup goes to the provider.
async fn connect(
    session: EmbedSession,
    State(state): State<AppState>,
    PagePath((_, id, key)): PagePath<(String, String, String)>,
) -> Result<Response, EmbedError> {
    let instance = own_instance(&state, &session, &id).await?;
    match oauth::start(&state, &instance, &key, true).await {
        Ok(Started::Consent(url)) => Ok(Redirect::to(url.as_str()).into_response()),
        Ok(Started::Connected) => {
            Ok(Redirect::to(&session.link(&format!("instances/{id}/configure"))).into_response())
        }
        Err(err) => Err(from_api(crate::api::connections::oauth_error(err))),
    }
}

/// Pauses, resumes or removes the instance.
async fn lifecycle(
    session: EmbedSession,
    State(state): State<AppState>,
    PagePath((_, id)): PagePath<(String, String)>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, EmbedError> {
    let instance = own_instance(&state, &session, &id).await?;
    let action = pairs
        .iter()
        .find(|(name, _)| name == "action")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    let enabled = match action {
        "remove" => {
            instances::remove(&state, &session.tenant_id, &instance.id)
                .await
                .map_err(from_api)?;
            return Ok(Redirect::to(&session.link("instances")).into_response());
        }
        "pause" => false,
        "resume" => true,
        other => {
            return Err(EmbedError::BadRequest(format!("unknown action `{other}`")));
        }
    };
    let settings = InstanceSettings {
        enabled: Some(enabled),
        ..InstanceSettings::default()
    };
    instances::update(&state, &session.tenant_id, &instance.id, settings)
        .await
        .map_err(from_api)?;
    Ok(Redirect::to(&session.link(&format!("instances/{id}/configure"))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn var(data_type: ConfigVarType) -> ConfigVar {
        serde_json::from_value(json!({"key": "v", "dataType": data_type})).unwrap()
    }

    #[test]
    fn form_text_becomes_the_variable_type() {
        assert_eq!(
            typed_value(&var(ConfigVarType::Number), "42").unwrap(),
            Some(json!(42))
        );
        assert!(typed_value(&var(ConfigVarType::Number), "forty").is_err());
        assert_eq!(
            typed_value(&var(ConfigVarType::Boolean), "false").unwrap(),
            Some(json!(false))
        );
        assert!(typed_value(&var(ConfigVarType::Json), "{nope").is_err());
        assert_eq!(
            typed_value(&var(ConfigVarType::String), "  ").unwrap(),
            None
        );
    }

    #[test]
    fn keys_become_labels() {
        assert_eq!(humanized("apiBaseUrl"), "API base URL");
        assert_eq!(humanized("baseUrl"), "Base URL");
        assert_eq!(humanized("accessToken"), "Access token");
        assert_eq!(humanized("client_id"), "Client ID");
        assert_eq!(humanized(""), "");
    }

    #[test]
    fn only_http_origins_open_the_allow_list() {
        assert_eq!(
            origin_of(&json!("http://127.0.0.1:8080/api/v3")).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of(&json!("file:///etc/passwd")), None);
        assert_eq!(origin_of(&json!("not a url")), None);
        assert_eq!(origin_of(&json!(3)), None);
    }
}
