//! `/v1/instances/{id}/connections`: an instance's connections and their OAuth status
//! (never a token), starting an OAuth authorization, disconnecting; the picklist
//! items a config variable's data source lists; and `/v1/connection-templates`, a
//! tenant's fixed values of a component's connection type (set once, never read back).

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{Json, Path};
use crate::app::AppState;
use crate::oauth::{self, OAuthError, Started};
use crate::store::now_ms;
use crate::store::oauth::ConnectionTemplate;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/instances/{id}/connections", get(list))
        .route("/instances/{id}/connections/{key}", delete(disconnect))
        .route(
            "/instances/{id}/connections/{key}/authorize",
            post(authorize),
        )
        .route("/instances/{id}/config/{key}/items", get(items))
        .route("/connection-templates", get(templates))
        .route(
            "/connection-templates/{component}/{key}",
            put(create_template),
        )
}

/// The HTTP answer to an OAuth failure.
pub fn oauth_error(err: OAuthError) -> ApiError {
    match err {
        OAuthError::NotOAuth(message) => ApiError::invalid(message),
        err @ OAuthError::Settings(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "oauth-settings", err.to_string())
        }
        err @ (OAuthError::Refused(_) | OAuthError::Denied(_)) => {
            ApiError::new(StatusCode::BAD_REQUEST, "oauth-refused", err.to_string())
        }
        err @ OAuthError::NeedsReconnect(_) => {
            ApiError::new(StatusCode::CONFLICT, "connection-error", err.to_string())
        }
        err @ OAuthError::Provider(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "oauth-provider", err.to_string())
        }
        err @ OAuthError::BadState(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "oauth-state", err.to_string())
        }
        OAuthError::Store(err) => err.into(),
        OAuthError::Internal(message) => ApiError::internal(message),
    }
}

/// Each connection variable of the integration with how it is set: `fields` (their
/// names only) and, for an OAuth connection, its status.
async fn list(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let instance = crate::instances::get(&state, &tenant.id, &id).await?;
    Ok(Json(
        json!({"connections": statuses(&state, &instance).await?}),
    ))
}

/// The connection statuses of an instance, as the API and the wizard show them.
pub async fn statuses(
    state: &AppState,
    instance: &crate::store::instances::Instance,
) -> Result<Vec<Value>, ApiError> {
    let compiled = crate::integrations::instance_plan(state, instance).await?;
    let fields = crate::instances::open_connections(state, instance)?;
    let grants = state
        .store
        .oauth_connections_of(&instance.tenant_id, &instance.id)
        .await?;
    let mut keys: Vec<String> = compiled
        .definition
        .config_vars
        .iter()
        .filter(|var| var.connection.is_some())
        .map(|var| var.key.clone())
        .collect();
    for key in fields
        .iter()
        .map(|c| &c.key)
        .chain(grants.iter().map(|g| &g.connection_key))
    {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    Ok(keys
        .into_iter()
        .map(|key| {
            let own = fields.iter().find(|c| c.key == key);
            let grant = grants.iter().find(|g| g.connection_key == key);
            let status = oauth::connection_status(&compiled, &key, own, grant);
            json!({
                "key": key,
                "status": status.as_str(),
                "statusDetail": status.detail(),
                "fieldNames": own
                    .and_then(|c| c.fields.as_object())
                    .map(|fields| fields.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default(),
                "oauth": grant.map(|g| json!({
                    "expiresAtMs": g.expires_at_ms,
                    "refreshedMs": g.refreshed_ms,
                })),
            })
        })
        .collect())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthorizeRequest {
    /// The consent runs in a popup, which the callback page closes.
    #[serde(default)]
    popup: bool,
}

async fn authorize(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path((id, key)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: none means the defaults.
    let request: AuthorizeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        AuthorizeRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|err| ApiError::invalid(format!("the body is not valid: {err}")))?
    };
    let instance = crate::instances::get(&state, &tenant.id, &id).await?;
    let started = oauth::start(&state, &instance, &key, request.popup)
        .await
        .map_err(oauth_error)?;
    Ok(Json(match started {
        Started::Consent(url) => json!({"authorizeUrl": url.as_str()}),
        Started::Connected => json!({"connected": true}),
    }))
}

async fn disconnect(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let instance = crate::instances::get(&state, &tenant.id, &id).await?;
    oauth::disconnect(&state, &instance, &key)
        .await
        .map_err(oauth_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn items(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let instance = crate::instances::get(&state, &tenant.id, &id).await?;
    let compiled = crate::integrations::instance_plan(&state, &instance).await?;
    let items = crate::datasources::items(&state, &instance, &compiled, &key).await?;
    Ok(Json(json!({"items": items})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TemplateRequest {
    fields: Map<String, Value>,
}

async fn create_template(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path((component, key)): Path<(String, String)>,
    Json(request): Json<TemplateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    crate::registry::check_key("component", &component).map_err(ApiError::invalid)?;
    if key.is_empty() || key.len() > 128 {
        return Err(ApiError::invalid(
            "the connection key must be 1 to 128 characters",
        ));
    }
    if request.fields.is_empty() {
        return Err(ApiError::invalid("`fields` is empty"));
    }
    for (name, value) in &request.fields {
        if !(value.is_string() || value.is_number() || value.is_boolean()) {
            return Err(ApiError::invalid(format!(
                "`fields.{name}` must be a string, number or boolean"
            )));
        }
    }
    let plaintext = serde_json::to_vec(&request.fields).map_err(ApiError::internal)?;
    let sealed_fields = state
        .secrets
        .seal(
            &oauth::template_owner(&tenant.id, &component, &key),
            &plaintext,
        )
        .map_err(ApiError::internal)?;
    let template = ConnectionTemplate {
        tenant_id: tenant.id.clone(),
        component_key: component.clone(),
        connection_key: key.clone(),
        sealed_fields,
        field_names: request.fields.keys().cloned().collect(),
        created_ms: now_ms(),
    };
    state.store.create_connection_template(&template).await?;
    Ok((StatusCode::CREATED, Json(template_view(&template))))
}

fn template_view(template: &ConnectionTemplate) -> Value {
    json!({
        "component": template.component_key,
        "key": template.connection_key,
        "fieldNames": template.field_names,
        "createdMs": template.created_ms,
    })
}

async fn templates(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
) -> Result<Json<Value>, ApiError> {
    let templates = state.store.connection_templates(&tenant.id).await?;
    Ok(Json(
        json!({"templates": templates.iter().map(template_view).collect::<Vec<_>>()}),
    ))
}
