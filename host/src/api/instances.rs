//! `/v1/instances`: deploy an integration version for a customer, read, reconfigure,
//! enable/disable, redeploy, upgrade and remove instances, and report their state
//! usage against the quota. Secrets go in, never out: connections are reported by
//! key, kind and field names only.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::executions::rfc3339;
use super::extract::{Json, Path, Query};
use crate::app::AppState;
use crate::instances::{self, DeployRequest, HookResult, InstanceSettings};
use crate::store::instances::Instance;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/instances", post(deploy).get(list))
        .route("/instances/{id}", get(show).patch(update).delete(remove))
        .route("/instances/{id}/deploy", post(redeploy))
        .route("/instances/{id}/upgrade", post(upgrade))
        .route("/instances/{id}/state", get(state_usage))
}

/// The state an instance keeps against its quota (its flows' and its own scopes), and
/// the tenant's total against the tenant's.
async fn state_usage(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let instance = instances::get(&state, &tenant.id, &id).await?;
    let group = sluice_runtime::StateNamespace::Instance {
        tenant: tenant.id.clone(),
        instance: instance.id.clone(),
    }
    .quota_group();
    let used = state.store.state_usage(&tenant.id, Some(&group)).await?;
    let total = state.store.state_usage(&tenant.id, None).await?;
    let quota = state.config.state_quota;
    Ok(Json(json!({
        "instanceId": instance.id,
        "usedBytes": used.bytes,
        "usedKeys": used.keys,
        "quotaBytes": quota.instance_bytes,
        "quotaKeys": quota.instance_keys,
        "tenant": {
            "usedBytes": total.bytes,
            "usedKeys": total.keys,
            "quotaBytes": quota.tenant_bytes,
            "quotaKeys": quota.tenant_keys,
        },
    })))
}

/// The API's view of an instance.
async fn view(state: &AppState, instance: &Instance) -> Result<Value, ApiError> {
    let urls = instances::webhook_urls(state, instance).await?;
    let schedules = state
        .store
        .schedules_of(&instance.tenant_id, &instance.id)
        .await?;
    let connections: Vec<Value> = instances::open_connections(state, instance)?
        .into_iter()
        .map(|connection| {
            let fields: Vec<String> = connection
                .fields
                .as_object()
                .map(|fields| fields.keys().cloned().collect())
                .unwrap_or_default();
            json!({
                "key": connection.key,
                "kind": connection.kind,
                "fields": fields,
                "hasToken": connection.token.is_some(),
                "tokenExpiresAtMs": connection.token.and_then(|token| token.expires_at_ms),
            })
        })
        .collect();
    let flows: Vec<Value> = urls
        .iter()
        .map(|(flow, url)| {
            let settings = instance
                .flow_settings
                .get(flow)
                .cloned()
                .unwrap_or_default();
            json!({
                "key": flow,
                "webhookUrl": url,
                "synchronous": settings.synchronous,
                "apiKeyRequired": !settings.api_key_hashes.is_empty(),
                "schedule": schedules.iter().find(|schedule| &schedule.flow_key == flow).map(|schedule| json!({
                    "cron": schedule.cron,
                    "timezone": schedule.timezone,
                    "nextRunAt": schedule.next_run_ms.map(rfc3339),
                    "lastRunAt": schedule.last_run_ms.map(rfc3339),
                })),
            })
        })
        .collect();
    Ok(json!({
        "id": instance.id,
        "name": instance.name,
        "customerId": instance.customer_id,
        "integration": {"key": instance.integration_key, "version": instance.integration_version},
        "enabled": instance.enabled,
        "status": instance.status,
        "statusDetail": instance.status_detail,
        "config": instance.config,
        "connections": connections,
        "allowedHosts": instance.allowed_hosts,
        "flows": flows,
        "createdAt": rfc3339(instance.created_ms),
        "updatedAt": rfc3339(instance.updated_ms),
    }))
}

async fn with_hooks(
    state: &AppState,
    instance: &Instance,
    hooks: Vec<HookResult>,
) -> Result<Value, ApiError> {
    let mut body = view(state, instance).await?;
    body["hooks"] = json!(hooks);
    Ok(body)
}

async fn deploy(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Json(request): Json<DeployRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (instance, hooks) = instances::deploy(&state, &tenant.id, request).await?;
    Ok((
        StatusCode::CREATED,
        Json(with_hooks(&state, &instance, hooks).await?),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    customer_id: Option<String>,
}

async fn list(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut items = Vec::new();
    for instance in state
        .store
        .list_instances(&tenant.id, query.customer_id.as_deref())
        .await?
    {
        items.push(view(&state, &instance).await?);
    }
    Ok(Json(json!({"items": items})))
}

async fn show(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let instance = instances::get(&state, &tenant.id, &id).await?;
    Ok(Json(view(&state, &instance).await?))
}

async fn update(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
    Json(settings): Json<InstanceSettings>,
) -> Result<Json<Value>, ApiError> {
    let (instance, hooks) = instances::update(&state, &tenant.id, &id, settings).await?;
    Ok(Json(with_hooks(&state, &instance, hooks).await?))
}

async fn redeploy(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (instance, hooks) = instances::redeploy(&state, &tenant.id, &id).await?;
    Ok(Json(with_hooks(&state, &instance, hooks).await?))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpgradeRequest {
    version: i64,
}

async fn upgrade(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
    Json(request): Json<UpgradeRequest>,
) -> Result<Json<Value>, ApiError> {
    let (instance, hooks) = instances::upgrade(&state, &tenant.id, &id, request.version).await?;
    Ok(Json(with_hooks(&state, &instance, hooks).await?))
}

async fn remove(
    axum::extract::State(state): axum::extract::State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let hooks = instances::remove(&state, &tenant.id, &id).await?;
    Ok(Json(json!({"id": id, "removed": true, "hooks": hooks})))
}
