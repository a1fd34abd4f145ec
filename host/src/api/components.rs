//! `/v1/components`: the tenant's component registry. Uploads are raw `.wasm` bodies,
//! refused past the size limit before they are read in full; versions are numbered per
//! component key and a version pinned by an integration version cannot be deleted.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::Serialize;
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::executions::rfc3339;
use super::extract::{Json, Path};
use crate::app::AppState;
use crate::registry::{self, UploadAnswer};
use crate::store::components::ComponentVersion;
use crate::store::uploads::{ComponentUpload, UploadStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/components", get(list).post(upload))
        .route("/components/{key}", get(versions))
        .route(
            "/components/{key}/versions/{version}",
            get(fetch).delete(remove),
        )
        .route(
            "/components/{key}/versions/{version}/manifest",
            get(manifest),
        )
        .route("/component-uploads/{id}", get(upload_status))
}

/// Reads a request body of at most `limit` bytes: a declared `content-length` over it
/// is refused before anything is read, and a streamed body as soon as it passes it.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::too_large(format!(
            "the {what} is larger than the limit of {limit} bytes"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(err) => Err(ApiError::invalid(format!(
            "could not read the request body: {err}"
        ))),
    }
}

/// Answers an error given before the request body was read in full. The rest of the
/// body is still on the connection, so it is closed after this response: a client must
/// not send its next request there.
pub(crate) fn refused_unread(err: ApiError) -> Response {
    let mut response = err.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The media type of a request, lower-cased and without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
}

/// The manifest's essentials: what a listing shows without the input schemas.
fn manifest_summary(world: &str, manifest: &str) -> Value {
    let document: Value = serde_json::from_str(manifest).unwrap_or(Value::Null);
    let keys = |section: &str| -> Vec<String> {
        match document.get(section) {
            Some(Value::Object(entries)) => entries.keys().cloned().collect(),
            _ => Vec::new(),
        }
    };
    if world == "flow" {
        return json!({
            "name": document.get("name"),
            "version": document.get("version").and_then(Value::as_str).unwrap_or("0.0.0"),
            "description": document.get("description"),
            "trigger": document.get("trigger"),
        });
    }
    let connections: Vec<&Value> = document
        .get("connections")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|c| c.get("key")).collect())
        .unwrap_or_default();
    let display = document.get("display");
    json!({
        "version": document.get("version"),
        "label": display.and_then(|d| d.get("label")),
        "description": display.and_then(|d| d.get("description")),
        "actions": keys("actions"),
        "triggers": keys("triggers"),
        "dataSources": keys("dataSources"),
        "connections": connections,
    })
}

/// A component version as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionView {
    key: String,
    version: i64,
    hash: String,
    world: String,
    size: i64,
    created_at: String,
    manifest: Value,
    compile: CompileView,
}

/// What compiling the version cost (null where unknown: versions uploaded before
/// compiles were measured, or peak memory of an in-process compile).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CompileView {
    time_us: Option<i64>,
    peak_memory_bytes: Option<i64>,
}

impl From<&ComponentVersion> for VersionView {
    fn from(row: &ComponentVersion) -> Self {
        VersionView {
            key: row.key.clone(),
            version: row.version,
            hash: row.hash.clone(),
            world: row.world.clone(),
            size: row.size,
            created_at: rfc3339(row.created_ms),
            manifest: manifest_summary(&row.world, &row.manifest),
            compile: CompileView {
                time_us: row.compile.time_us,
                peak_memory_bytes: row.compile.peak_memory_bytes,
            },
        }
    }
}

fn version_not_found(key: &str, version: i64) -> ApiError {
    ApiError::not_found(format_args!("component `{key}` version {version}"))
}

fn check_wasm_media_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers).as_deref() {
        None | Some("application/wasm" | "application/octet-stream") => Ok(()),
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!(
                "send the component's bytes as `application/wasm` (or \
                 `application/octet-stream`), not `{other}`"
            ),
        )),
    }
}

async fn upload(
    auth: Result<TenantAuth, ApiError>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let tenant = match auth.and_then(|TenantAuth(tenant)| {
        check_wasm_media_type(&headers)?;
        Ok(tenant)
    }) {
        Ok(tenant) => tenant,
        Err(err) => return refused_unread(err),
    };
    let bytes = match read_body(
        &headers,
        body,
        state.config.max_component_bytes,
        "component",
    )
    .await
    {
        Ok(bytes) => bytes,
        Err(err) => return refused_unread(err),
    };
    let wait = if prefers_async(&headers) {
        std::time::Duration::ZERO
    } else {
        state.config.upload_wait
    };
    let (row, created) = match registry::start_upload(&state, &tenant.id, bytes, wait).await {
        Ok(UploadAnswer::Done(Ok(uploaded))) => uploaded,
        Ok(UploadAnswer::Done(Err(err))) | Err(err) => return err.into_response(),
        Ok(UploadAnswer::Compiling(upload)) => {
            let location = format!("/v1/component-uploads/{}", upload.id);
            return (
                StatusCode::ACCEPTED,
                [(header::LOCATION, location)],
                Json(UploadView::from(&upload)),
            )
                .into_response();
        }
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!("/v1/components/{}/versions/{}", row.key, row.version);
    (
        status,
        [(header::LOCATION, location)],
        Json(VersionView::from(&row)),
    )
        .into_response()
}

/// Whether the client asked not to wait (RFC 7240 `Prefer: respond-async`).
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|preference| {
            preference
                .split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("respond-async"))
        })
}

/// An upload compiled off the request path, as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UploadView {
    id: String,
    status: &'static str,
    size: i64,
    hash: String,
    created_at: String,
    finished_at: Option<String>,
    /// When ready: the version the upload became, and its URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    component: Option<Value>,
    /// When failed: what a synchronous upload would have answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

impl From<&ComponentUpload> for UploadView {
    fn from(upload: &ComponentUpload) -> Self {
        let (component, error) = match &upload.status {
            UploadStatus::Compiling => (None, None),
            UploadStatus::Ready {
                key,
                version,
                created,
            } => (
                Some(json!({
                    "key": key,
                    "version": version,
                    "created": created,
                    "url": format!("/v1/components/{key}/versions/{version}"),
                })),
                None,
            ),
            UploadStatus::Failed { code, message } => {
                (None, Some(json!({"code": code, "message": message})))
            }
        };
        UploadView {
            id: upload.id.clone(),
            status: upload.status.name(),
            size: upload.size,
            hash: upload.hash.clone(),
            created_at: rfc3339(upload.created_ms),
            finished_at: upload.finished_ms.map(rfc3339),
            component,
            error,
        }
    }
}

async fn upload_status(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<UploadView>, ApiError> {
    let upload = state
        .store
        .component_upload(&tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("component upload `{id}`")))?;
    Ok(Json(UploadView::from(&upload)))
}

async fn list(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let components: Vec<Value> = state
        .store
        .list_components(&tenant.id)
        .await?
        .iter()
        .map(|summary| {
            json!({
                "key": summary.latest.key,
                "versions": summary.versions,
                "latest": VersionView::from(&summary.latest),
            })
        })
        .collect();
    Ok(Json(json!({ "components": components })))
}

async fn versions(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rows = state.store.component_versions(&tenant.id, &key).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format_args!("component `{key}`")));
    }
    let versions: Vec<VersionView> = rows.iter().map(VersionView::from).collect();
    Ok(Json(json!({ "key": key, "versions": versions })))
}

async fn fetch(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path((key, version)): Path<(String, i64)>,
) -> Result<Json<VersionView>, ApiError> {
    state
        .store
        .component_version(&tenant.id, &key, version)
        .await?
        .map(|row| Json(VersionView::from(&row)))
        .ok_or_else(|| version_not_found(&key, version))
}

async fn manifest(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path((key, version)): Path<(String, i64)>,
) -> Result<Json<Value>, ApiError> {
    let row = state
        .store
        .component_version(&tenant.id, &key, version)
        .await?
        .ok_or_else(|| version_not_found(&key, version))?;
    serde_json::from_str(&row.manifest)
        .map(Json)
        .map_err(ApiError::internal)
}

async fn remove(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path((key, version)): Path<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let users = match state
        .store
        .delete_component_version(&tenant.id, &key, version)
        .await?
    {
        Ok(()) => return Ok(StatusCode::NO_CONTENT),
        Err(users) => users,
    };
    let pinned_by: Vec<String> = users
        .integration_versions
        .iter()
        .map(|(integration, version)| format!("`{integration}` version {version}"))
        .collect();
    let mut message = format!(
        "component `{key}` version {version} is pinned by integration {} {}",
        if pinned_by.len() == 1 {
            "version"
        } else {
            "versions"
        },
        pinned_by.join(", ")
    );
    if !users.instances.is_empty() {
        let instances: Vec<String> = users
            .instances
            .iter()
            .map(|(id, name)| format!("{name} ({id})"))
            .collect();
        message.push_str(&format!(
            ", deployed as instance{} {}",
            if instances.len() == 1 { "" } else { "s" },
            instances.join(", ")
        ));
    }
    message.push_str(
        "; integration versions are immutable, so a component version they pin stays in the \
         registry",
    );
    Err(ApiError::conflict(message))
}
