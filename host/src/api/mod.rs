//! The HTTP API, versioned under `/v1` (JSON, one module per resource), the public
//! webhook ingress under `/webhooks`, and the embedded pages under `/embed`
//! ([`crate::embed`]). `docs/openapi.yaml` documents every route of the first two; a
//! test checks it against [`router`].

pub mod auth;
pub mod components;
pub mod connections;
pub mod customers;
pub mod embed_settings;
pub mod error;
pub mod executions;
pub mod extract;
pub mod instances;
pub mod integrations;
pub mod oauth;
pub mod signing_keys;
pub mod webhooks;

use axum::Router;
use axum::routing::get;
use serde_json::json;

use crate::app::AppState;
use error::ApiError;

/// The whole HTTP surface of the server.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/health", get(health))
        .merge(customers::routes())
        .merge(components::routes())
        .merge(integrations::routes())
        .merge(instances::routes())
        .merge(executions::routes())
        .merge(connections::routes())
        .merge(signing_keys::routes())
        .merge(embed_settings::routes())
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.max_json_bytes,
        ));
    Router::new()
        .nest("/v1", v1)
        .merge(webhooks::routes(state.config.max_webhook_bytes))
        .merge(oauth::routes())
        // The embedded pages: HTML for customers' users in the tenant's iframe, with
        // headers of their own; documented in docs/embedding.md, not in the OpenAPI
        // document (which `tests/openapi.rs` checks against the `/v1` and webhook routes).
        .merge(crate::embed::router(&state))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .with_state(state)
}

/// An error answered before a request's body was read leaves that body on the
/// connection, where it would be read as the next request; `Connection: close` makes
/// the client open a fresh connection instead.
async fn close_after_refused_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok())
            .and_then(|length| length.parse::<u64>().ok())
            .is_some_and(|length| length > 0);
    let mut response = next.run(request).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Liveness: no authentication, no store access.
async fn health() -> extract::Json<serde_json::Value> {
    extract::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}
