//! Where a webhook becomes an execution: the token routes to an instance's flow, the
//! request is checked (instance state, API key), stored durably with a new execution
//! row, and then either queued (asynchronous: the caller gets the execution id) or run
//! at once while the caller waits up to the synchronous deadline.

use std::sync::Arc;

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use sluice_runtime::flow::{ExecutionRecord, FlowResponse, RecordedValue};

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::queue::{self, Enqueued, NewExecution, TriggerKind};
use crate::store::executions::Payload;
use crate::store::instances::InstanceStatus;
use crate::store::now_ms;

/// The header a caller sets to wait for the result.
pub const SYNCHRONOUS_HEADER: &str = "sluice-synchronous";
/// The header every webhook response carries.
pub const EXECUTION_ID_HEADER: &str = "sluice-execution-id";
/// The header carrying a flow's API key.
pub const API_KEY_HEADER: &str = "api-key";

/// What the caller of a webhook gets.
pub enum Accepted {
    /// Queued: answer 202 with the id.
    Queued { execution_id: String },
    /// Ran synchronously: answer with the flow's response.
    Completed {
        execution_id: String,
        tenant_id: String,
        record: Option<Box<ExecutionRecord>>,
    },
    /// Still running when the deadline passed.
    DeadlinePassed { execution_id: String },
    /// Not queued: another execution of the FIFO flow holds the request's dedupe id
    /// within its window. Recorded as `duplicate` (`execution_id`) of `original`.
    Duplicate {
        execution_id: String,
        original: String,
    },
}

/// A webhook request as received.
pub struct Delivery {
    pub method: String,
    /// The path after the token.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Delivery {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

fn api_key_matches(given: Option<&str>, hashes: &[String]) -> bool {
    let Some(given) = given else {
        return false;
    };
    let digest = hex::encode(Sha256::digest(given.as_bytes()));
    hashes.contains(&digest)
}

/// Accepts a delivery for webhook `token`.
pub async fn accept(
    state: &AppState,
    token: &str,
    delivery: Delivery,
) -> Result<Accepted, ApiError> {
    // The webhook, its instance and what the execution's environment needs, in one
    // store call; a synchronous run uses them as read here.
    let (webhook, context) = state
        .store
        .webhook_context(token)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let instance = &context.instance;
    if !instance.enabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "instance-disabled",
            "the instance is disabled",
        ));
    }
    if instance.status != InstanceStatus::Deployed {
        // Only the status: the detail (a hook's error) may name the services and
        // hosts the instance talks to, which a public caller has no business seeing.
        // The tenant reads it on the instance.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "instance-not-deployed",
            format!("the instance is {}", instance.status.as_str()),
        ));
    }
    let settings = instance
        .flow_settings
        .get(&webhook.flow_key)
        .cloned()
        .unwrap_or_default();
    if !settings.api_key_hashes.is_empty()
        && !api_key_matches(delivery.header(API_KEY_HEADER), &settings.api_key_hashes)
    {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("this flow requires its API key in the `{API_KEY_HEADER}` header"),
        ));
    }
    let compiled = crate::integrations::instance_plan(state, instance).await?;
    let policy = compiled
        .plan
        .flow_policy(&webhook.flow_key)
        .cloned()
        .unwrap_or_default();
    let asked = delivery
        .header(SYNCHRONOUS_HEADER)
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));
    let synchronous =
        compiled.plan.flow_synchronous(&webhook.flow_key) || settings.synchronous || asked;
    let new = NewExecution {
        tenant_id: webhook.tenant_id.clone(),
        instance_id: webhook.instance_id.clone(),
        flow_key: webhook.flow_key.clone(),
        trigger: TriggerKind::Webhook,
        payload: Payload {
            method: delivery.method,
            path: delivery.path,
            query: delivery.query,
            headers: delivery.headers,
            body: delivery.body,
            received_ms: now_ms(),
        },
        parent_id: None,
        replay_of: None,
        singleton: false,
    };
    if synchronous {
        return queue::run_synchronously(
            state,
            new,
            &policy,
            Some(context),
            state.config.sync_deadline,
        )
        .await;
    }
    Ok(match queue::enqueue_with(state, new, &policy).await? {
        Enqueued::Queued { execution_id } | Enqueued::Skipped { execution_id } => {
            Accepted::Queued { execution_id }
        }
        Enqueued::Deduplicated {
            execution_id,
            original,
        } => Accepted::Duplicate {
            execution_id,
            original,
        },
    })
}

/// The HTTP response of a flow, as status, headers, content type and body bytes.
pub struct ResponseParts {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Turns a flow's response into HTTP: JSON values as JSON, strings as text (or the
/// declared content type), `{contentType, base64}` binary data as its bytes.
pub async fn response_parts(
    state: &AppState,
    tenant: &str,
    response: &FlowResponse,
) -> Result<ResponseParts, ApiError> {
    use base64::Engine as _;
    let value = match &response.body {
        None => None,
        Some(RecordedValue::Inline(value)) => Some(Arc::clone(value)),
        Some(RecordedValue::Stored { reference, .. }) => {
            let bytes = state
                .store
                .get_result(Some(tenant), reference)
                .await?
                .ok_or_else(|| {
                    ApiError::internal(format!("stored result {reference} is missing"))
                })?;
            Some(Arc::new(
                serde_json::from_slice(&bytes).map_err(ApiError::internal)?,
            ))
        }
    };
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let (content_type, body) = match value.as_deref() {
        None => (
            response
                .content_type
                .clone()
                .unwrap_or_else(|| "text/plain; charset=utf-8".into()),
            Vec::new(),
        ),
        Some(serde_json::Value::String(text)) => (
            response
                .content_type
                .clone()
                .unwrap_or_else(|| "text/plain; charset=utf-8".into()),
            text.clone().into_bytes(),
        ),
        Some(serde_json::Value::Object(map))
            if map.len() == 2
                && map.get("base64").is_some_and(serde_json::Value::is_string)
                && map.contains_key("contentType") =>
        {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(map["base64"].as_str().unwrap_or_default())
                .map_err(ApiError::internal)?;
            let declared = map["contentType"]
                .as_str()
                .unwrap_or("application/octet-stream")
                .to_string();
            (response.content_type.clone().unwrap_or(declared), bytes)
        }
        Some(other) => (
            response
                .content_type
                .clone()
                .unwrap_or_else(|| "application/json".into()),
            serde_json::to_vec(other).map_err(ApiError::internal)?,
        ),
    };
    Ok(ResponseParts {
        status,
        headers: response.headers.clone(),
        content_type,
        body,
    })
}
