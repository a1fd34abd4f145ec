//! `/webhooks/{token}[/{path}]`: the public ingress. Any method; the body, headers
//! (lower-cased), query and path suffix reach the flow's trigger. Every answer carries
//! `sluice-execution-id` once an execution exists. Each URL is rate-limited
//! (`ratelimit`) before anything else is done with the request.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::json;
use sluice_runtime::flow::StepErrorKind;

use super::error::ApiError;
use super::extract::Path;
use crate::app::AppState;
use crate::ingress::{self, Accepted, Delivery, EXECUTION_ID_HEADER};
use crate::ratelimit::Limited;

pub fn routes(body_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/webhooks/{token}", any(root))
        .route("/webhooks/{token}/{*path}", any(with_path))
        .layer(DefaultBodyLimit::max(body_limit))
}

async fn root(state: State<AppState>, Path(token): Path<String>, request: Request) -> Response {
    handle(state, token, String::new(), request).await
}

async fn with_path(
    state: State<AppState>,
    Path((token, path)): Path<(String, String)>,
    request: Request,
) -> Response {
    handle(state, token, path, request).await
}

/// `a=1&b=x%20y` → decoded pairs, in order (names may repeat).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

async fn handle(
    State(state): State<AppState>,
    token: String,
    path: String,
    request: Request,
) -> Response {
    // First, so a flood costs neither a body read nor a store lookup. Unknown tokens are
    // counted like known ones: the answer (404, or 429 past the limit) is the same
    // whether the token exists or not, so the limiter reveals nothing.
    if let Err(limited) = state.rate_limit.check(&token) {
        return rate_limited(limited);
    }
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, state.config.max_webhook_bytes).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::too_large(format!(
                "the request body exceeds the webhook limit of {} bytes",
                state.config.max_webhook_bytes
            ))
            .into_response();
        }
    };
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let delivery = Delivery {
        method: parts.method.as_str().to_string(),
        path,
        query: query_pairs(parts.uri.query()),
        headers,
        body: body.to_vec(),
    };
    match ingress::accept(&state, &token, delivery).await {
        Err(err) => err.into_response(),
        Ok(Accepted::Queued { execution_id }) => with_id(
            (StatusCode::ACCEPTED, axum::Json(json!({"executionId": execution_id}))).into_response(),
            &execution_id,
        ),
        // A repeat within the FIFO dedupe window: recorded as a `duplicate` execution
        // (replayable), not queued; `duplicateOf` is the execution holding the id.
        Ok(Accepted::Duplicate {
            execution_id,
            original,
        }) => with_id(
            (
                StatusCode::OK,
                axum::Json(json!({
                    "executionId": execution_id,
                    "deduplicated": true,
                    "duplicateOf": original,
                })),
            )
                .into_response(),
            &execution_id,
        ),
        Ok(Accepted::DeadlinePassed { execution_id }) => with_id(
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline-exceeded",
                format!(
                    "the execution did not finish within {} s; it goes on: GET /v1/executions/{execution_id}",
                    state.config.sync_deadline.as_secs()
                ),
            )
            .into_response(),
            &execution_id,
        ),
        Ok(Accepted::Completed {
            execution_id,
            tenant_id,
            record,
        }) => {
            let response = match record {
                None => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "execution-failed", "the execution could not run; see its record")
                    .into_response(),
                Some(record)
                    if record
                        .error
                        .as_ref()
                        .is_some_and(|error| error.kind == StepErrorKind::Busy) =>
                {
                    // The global concurrency limit: every sandbox slot stayed taken
                    // for the bounded wait. The caller may try again shortly.
                    let mut response = ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "busy",
                        format!(
                            "the server is running as many executions as it may ({} at once); retry shortly",
                            state.config.concurrency
                        ),
                    )
                    .into_response();
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(1));
                    response
                }
                Some(record) if !record.succeeded() => {
                    let error = record.error.as_ref();
                    let kind = error.map(|error| error.kind);
                    let status = match kind {
                        Some(StepErrorKind::InvalidInput | StepErrorKind::Input) => {
                            StatusCode::BAD_REQUEST
                        }
                        _ => StatusCode::INTERNAL_SERVER_ERROR,
                    };
                    // The caller is the public: the error's kind and step, not its
                    // message, which may name the services, URLs and hosts the flow
                    // calls. The tenant reads the whole error on the execution.
                    let message = format!(
                        "the execution failed{}{}; its record has the details",
                        kind.map(|kind| format!(" ({kind})")).unwrap_or_default(),
                        record
                            .failed_step
                            .as_deref()
                            .map(|step| format!(" at step `{step}`"))
                            .unwrap_or_default(),
                    );
                    (
                        status,
                        axum::Json(json!({"error": {
                            "code": "execution-failed",
                            "message": message,
                            "step": record.failed_step,
                            "executionId": execution_id,
                        }})),
                    )
                        .into_response()
                }
                Some(record) => match &record.response {
                    None => StatusCode::NO_CONTENT.into_response(),
                    Some(flow_response) => {
                        match ingress::response_parts(&state, &tenant_id, flow_response).await {
                            Ok(parts) => {
                                let mut response = Response::new(Body::from(parts.body));
                                *response.status_mut() = parts.status;
                                for (name, value) in parts.headers {
                                    if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                                        response.headers_mut().append(name, value);
                                    }
                                }
                                if let Ok(content_type) = HeaderValue::try_from(parts.content_type) {
                                    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
                                }
                                response
                            }
                            Err(err) => err.into_response(),
                        }
                    }
                },
            };
            with_id(response, &execution_id)
        }
    }
}

/// 429 `rate-limited` with `Retry-After` (whole seconds). Nothing is stored.
fn rate_limited(limited: Limited) -> Response {
    let retry_after = limited.retry_after_secs();
    let mut response = ApiError::rate_limited(format!(
        "this webhook accepts at most {} requests per second; retry after {retry_after} s",
        limited.per_second
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

fn with_id(mut response: Response, execution_id: &str) -> Response {
    if let Ok(value) = HeaderValue::try_from(execution_id) {
        response.headers_mut().insert(EXECUTION_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_strings() {
        assert_eq!(
            query_pairs(Some("a=1&b=x%20y+z&c&d=%ZZ")),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), "".into()),
                ("d".into(), "%ZZ".into())
            ]
        );
    }
}
