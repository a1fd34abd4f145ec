//! The HTTP API, versioned under `/v1` (JSON, one module per resource), and the public
//! webhook ingress under `/webhooks`. `docs/openapi.yaml` documents every route; a
//! test checks it against [`router`].

pub mod auth;
pub mod components;
pub mod customers;
pub mod error;
pub mod executions;
pub mod extract;
pub mod instances;
pub mod integrations;
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
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.max_json_bytes,
        ));
    Router::new()
        .nest("/v1", v1)
        .merge(webhooks::routes(state.config.max_webhook_bytes))
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
}

/// Liveness: no authentication, no store access.
async fn health() -> extract::Json<serde_json::Value> {
    extract::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}
