//! `/v1/integrations`: the tenant's integration definitions. A definition (YAML or
//! JSON) is published as a new version of its key after validation against the
//! tenant's component registry; versions are immutable.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sluice_runtime::flow::{Definition, Format, camel_case_key};

use super::auth::TenantAuth;
use super::components::{media_type, read_body, refused_unread};
use super::error::ApiError;
use super::executions::rfc3339;
use super::extract::{Json, Path};
use crate::app::AppState;
use crate::integrations;
use crate::store::integrations::IntegrationVersion;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/integrations", get(list))
        .route("/integrations/{key}", get(versions))
        .route("/integrations/{key}/versions", post(publish))
        .route("/integrations/{key}/versions/{version}", get(fetch))
}

/// The syntax of a definition body, from its media type; without one, a body that
/// starts with `{` is JSON and anything else YAML.
fn format_of(headers: &HeaderMap, text: &str) -> Result<Format, ApiError> {
    match media_type(headers).as_deref() {
        Some("application/json") => Ok(Format::Json),
        Some("application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml") => {
            Ok(Format::Yaml)
        }
        None if text.trim_start().starts_with('{') => Ok(Format::Json),
        None => Ok(Format::Yaml),
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!(
                "send the definition as `application/yaml` (or `text/yaml`) or \
                 `application/json`, not `{other}`"
            ),
        )),
    }
}

/// The stored definition of a version as JSON (`null` if it does not parse, which
/// only a corrupted store can cause).
fn definition_value(row: &IntegrationVersion) -> Value {
    serde_json::from_str(&row.definition).unwrap_or(Value::Null)
}

/// A version as listings show it: no definition body.
fn version_summary(row: &IntegrationVersion) -> Value {
    let definition = definition_value(row);
    json!({
        "key": row.key,
        "version": row.version,
        "name": definition.get("name"),
        "definitionHash": row.definition_hash,
        "pins": row.pins,
        "createdAt": rfc3339(row.created_ms),
    })
}

/// The flows of a definition: key, name, kind and trigger.
fn flows(definition: &Value) -> Vec<Value> {
    let Ok(definition) = Definition::from_value(definition.clone()) else {
        return Vec::new();
    };
    definition
        .flows
        .iter()
        .map(|flow| {
            let key = flow
                .key
                .clone()
                .or_else(|| flow.name.as_deref().map(camel_case_key))
                .unwrap_or_default();
            let trigger = match &flow.trigger {
                None => json!({"kind": "webhook"}),
                Some(trigger) => json!({
                    "kind": "component",
                    "component": trigger.component,
                    "trigger": trigger.trigger,
                }),
            };
            let (kind, code) = match &flow.code {
                Some(code) => ("code", Some(code.component.clone())),
                None => ("declarative", None),
            };
            let mut view = json!({
                "key": key,
                "name": flow.name,
                "kind": kind,
                "trigger": trigger,
            });
            if let Some(component) = code {
                view["codeComponent"] = json!(component);
            }
            view
        })
        .collect()
}

/// A version in full.
fn version_detail(row: &IntegrationVersion) -> Value {
    let definition = definition_value(row);
    let mut view = version_summary(row);
    view["description"] = definition
        .get("description")
        .cloned()
        .unwrap_or(Value::Null);
    view["flows"] = json!(flows(&definition));
    view["definition"] = definition;
    view
}

async fn publish(
    auth: Result<TenantAuth, ApiError>,
    State(state): State<AppState>,
    path: Result<Path<String>, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (tenant, key) = match auth.and_then(|TenantAuth(tenant)| Ok((tenant, path?.0))) {
        Ok(found) => found,
        Err(err) => return refused_unread(err),
    };
    let bytes = match read_body(
        &headers,
        body,
        state.config.max_definition_bytes,
        "definition",
    )
    .await
    {
        Ok(bytes) => bytes,
        Err(err) => return refused_unread(err),
    };
    match publish_text(&state, &tenant.id, &key, &headers, &bytes).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn publish_text(
    state: &AppState,
    tenant: &str,
    key: &str,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|err| ApiError::invalid(format!("the definition is not UTF-8 text: {err}")))?;
    let format = format_of(headers, text)?;
    let (row, created) = integrations::publish(state, tenant, key, text, format).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!("/v1/integrations/{}/versions/{}", row.key, row.version);
    Ok((
        status,
        [(header::LOCATION, location)],
        Json(version_detail(&row)),
    )
        .into_response())
}

async fn list(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let integrations: Vec<Value> = state
        .store
        .list_integrations(&tenant.id)
        .await?
        .iter()
        .map(|summary| {
            json!({
                "key": summary.latest.key,
                "versions": summary.versions,
                "latest": version_summary(&summary.latest),
            })
        })
        .collect();
    Ok(Json(json!({ "integrations": integrations })))
}

async fn versions(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rows = state.store.integration_versions(&tenant.id, &key).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format_args!("integration `{key}`")));
    }
    let versions: Vec<Value> = rows.iter().map(version_summary).collect();
    Ok(Json(json!({ "key": key, "versions": versions })))
}

async fn fetch(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path((key, version)): Path<(String, i64)>,
) -> Result<Json<Value>, ApiError> {
    state
        .store
        .integration_version(&tenant.id, &key, version)
        .await?
        .map(|row| Json(version_detail(&row)))
        .ok_or_else(|| ApiError::not_found(format_args!("integration `{key}` version {version}")))
}
