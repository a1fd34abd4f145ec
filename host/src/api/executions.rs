//! `/v1/executions`: list (by instance, flow, status, time; newest first, paged by an
//! opaque cursor), one execution with its record, its logs (paged, by minimum level),
//! the trigger request it was created from, and replays of it with that request.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{Json, Path, Query};
use crate::app::AppState;
use crate::store::executions::{Execution, ExecutionFilter, ExecutionStatus};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/executions", get(list))
        .route("/executions/{id}", get(show))
        .route("/executions/{id}/logs", get(logs))
        .route("/executions/{id}/payload", get(payload))
        .route("/executions/{id}/replay", post(replay))
}

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

pub fn rfc3339(ms: i64) -> String {
    let time =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

fn parse_time(name: &str, text: &str) -> Result<i64, ApiError> {
    let time = humantime::parse_rfc3339_weak(text).map_err(|err| {
        ApiError::invalid(format!(
            "`{name}` must be an RFC 3339 time (e.g. 2026-11-23T12:00:00Z): {err}"
        ))
    })?;
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| ApiError::invalid(format!("`{name}` is before 1970")))?
        .as_millis();
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn summary(execution: &Execution) -> Value {
    json!({
        "id": execution.id,
        "instanceId": execution.instance_id,
        "flow": execution.flow_key,
        "status": execution.status,
        "synchronous": execution.synchronous,
        "attempt": execution.attempt,
        // Runs interrupted by the host stopping (not counted in `attempt`).
        "crashRequeues": execution.crash_requeues,
        "createdAt": rfc3339(execution.created_ms),
        "startedAt": execution.started_ms.map(rfc3339),
        "finishedAt": execution.finished_ms.map(rfc3339),
        "failedStep": execution.failed_step,
        "error": execution.error,
        "parentId": execution.parent_id,
        "replayOf": execution.replay_of,
        // A `duplicate`: the execution holding its dedupe id.
        "duplicateOf": execution.duplicate_of,
        "trigger": execution.trigger,
        // When a queued execution (a retry, for one) may start.
        "runAfter": (execution.status == ExecutionStatus::Queued).then(|| rfc3339(execution.run_after_ms)),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    instance_id: Option<String>,
    flow: Option<String>,
    status: Option<String>,
    /// RFC 3339: created at or after.
    since: Option<String>,
    /// RFC 3339: created before.
    until: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// Only failed executions that are not replays and have no succeeded replay
    /// (with `status=failed`: what still needs attention).
    unreplayed: Option<bool>,
    /// Only executions started this way: webhook, schedule, replay, flow, event.
    trigger: Option<String>,
}

fn encode_cursor(execution: &Execution) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{}", execution.created_ms, execution.id))
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), ApiError> {
    let invalid = || ApiError::invalid("`cursor` is not a cursor this API returned");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (ms, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok((ms.parse().map_err(|_| invalid())?, id.to_string()))
}

async fn list(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(ExecutionStatus::parse(text).ok_or_else(|| {
            ApiError::invalid(format!(
                "`status` must be queued, waiting, running, succeeded, failed, skipped, cancelled, rejected or duplicate, not `{text}`"
            ))
        })?),
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let filter = ExecutionFilter {
        instance_id: query.instance_id,
        flow_key: query.flow,
        status,
        since_ms: query
            .since
            .as_deref()
            .map(|text| parse_time("since", text))
            .transpose()?,
        until_ms: query
            .until
            .as_deref()
            .map(|text| parse_time("until", text))
            .transpose()?,
        before: query.cursor.as_deref().map(decode_cursor).transpose()?,
        unreplayed: query.unreplayed.unwrap_or(false),
        trigger: match query.trigger {
            Some(trigger)
                if !["webhook", "schedule", "replay", "flow", "event"]
                    .contains(&trigger.as_str()) =>
            {
                return Err(ApiError::invalid(format!(
                    "`trigger` must be webhook, schedule, replay, flow or event, not `{trigger}`"
                )));
            }
            trigger => trigger,
        },
        // One more than asked tells whether another page exists.
        limit: limit + 1,
    };
    let mut executions = state.store.list_executions(&tenant.id, &filter).await?;
    let next = if executions.len() > limit {
        executions.truncate(limit);
        executions.last().map(encode_cursor)
    } else {
        None
    };
    Ok(Json(json!({
        "items": executions.iter().map(summary).collect::<Vec<_>>(),
        "nextCursor": next,
    })))
}

async fn find(state: &AppState, tenant: &str, id: &str) -> Result<Execution, ApiError> {
    state
        .store
        .get_execution(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("execution `{id}`")))
}

async fn show(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let execution = find(&state, &tenant.id, &id).await?;
    let mut body = summary(&execution);
    if let Some(record) = state.store.execution_record(&tenant.id, &id).await? {
        body["record"] = serde_json::from_str(&record).map_err(ApiError::internal)?;
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogQuery {
    /// Minimum level: trace, debug, info, warn or error.
    level: Option<String>,
    /// Lines after this sequence number.
    after: Option<i64>,
    limit: Option<usize>,
}

const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

async fn logs(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    find(&state, &tenant.id, &id).await?;
    let min_level = match query.level.as_deref() {
        None => 0,
        Some(text) => LEVELS
            .iter()
            .position(|level| level.eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "`level` must be one of {}, not `{text}`",
                    LEVELS.join(", ")
                ))
            })? as i64,
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let lines = state
        .store
        .execution_logs(&tenant.id, &id, min_level, query.after.unwrap_or(0), limit)
        .await?;
    let next = (lines.len() == limit)
        .then(|| lines.last().map(|line| line.seq))
        .flatten();
    let items: Vec<Value> = lines
        .iter()
        .map(|line| {
            json!({
                "seq": line.seq,
                "timestamp": rfc3339(line.ts_ms),
                "level": LEVELS.get(usize::try_from(line.level).unwrap_or(0)).copied().unwrap_or("info"),
                "step": line.step,
                "message": line.message,
                "fields": line.fields.as_deref().and_then(|fields| serde_json::from_str::<Value>(fields).ok()),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "nextAfter": next})))
}

async fn payload(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let payload = state
        .store
        .execution_payload(&tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("execution `{id}`")))?;
    let (body, encoding) = match String::from_utf8(payload.body) {
        Ok(text) => (text, "utf-8"),
        Err(err) => (
            base64::engine::general_purpose::STANDARD.encode(err.into_bytes()),
            "base64",
        ),
    };
    Ok(Json(json!({
        "method": payload.method,
        "path": payload.path,
        "query": payload.query,
        "headers": payload.headers,
        "body": body,
        "bodyEncoding": encoding,
        "receivedAt": rfc3339(payload.received_ms),
    })))
}

/// Queues a new execution of the same instance and flow with the stored trigger
/// request. It links to the original (`replayOf`), the first execution when this one
/// is itself a replay, so every replay of a failure points at that failure.
async fn replay(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    use crate::queue::{Enqueued, NewExecution, TriggerKind};
    use crate::store::instances::InstanceStatus;

    let execution = find(&state, &tenant.id, &id).await?;
    if !execution.status.is_final() {
        return Err(ApiError::conflict(format!(
            "execution `{id}` is {}; replay it once it has ended",
            execution.status.as_str()
        )));
    }
    let instance = state
        .store
        .get_instance(&tenant.id, &execution.instance_id)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "the instance `{}` of execution `{id}` was removed; there is nothing to replay it on",
                execution.instance_id
            ))
        })?;
    if !instance.enabled {
        return Err(ApiError::conflict(format!(
            "the instance `{}` is disabled; enable it to replay its executions",
            instance.id
        )));
    }
    if instance.status != InstanceStatus::Deployed {
        return Err(ApiError::conflict(format!(
            "the instance `{}` is {}; replay once it is deployed",
            instance.id,
            instance.status.as_str()
        )));
    }
    let compiled = crate::integrations::instance_plan(&state, &instance).await?;
    if !compiled.plan.has_flow(&execution.flow_key) {
        return Err(ApiError::conflict(format!(
            "flow `{}` is not in version {} of integration `{}`, which the instance now runs",
            execution.flow_key, instance.integration_version, instance.integration_key
        )));
    }
    let payload = state
        .store
        .execution_payload(&tenant.id, &id)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "the trigger request of execution `{id}` is no longer stored"
            ))
        })?;
    let original = execution.replay_of.clone().unwrap_or(execution.id);
    let new = NewExecution {
        tenant_id: tenant.id.clone(),
        instance_id: instance.id.clone(),
        flow_key: execution.flow_key,
        trigger: TriggerKind::Replay,
        payload,
        parent_id: None,
        replay_of: Some(original.clone()),
        singleton: false,
    };
    match crate::queue::enqueue(&state, new).await? {
        Enqueued::Queued { execution_id } | Enqueued::Skipped { execution_id } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"executionId": execution_id, "replayOf": original})),
        )),
        // A replay carries no dedupe id (it is asked for on purpose), so this does not
        // happen; answered like the duplicate it would be.
        Enqueued::Deduplicated {
            execution_id,
            original,
        } => Err(ApiError::conflict(format!(
            "not replayed: execution `{original}` holds this request's dedupe id within the \
             flow's dedupe window (recorded as execution `{execution_id}`)"
        ))),
    }
}
