//! The HTTP API, versioned under `/v1` (JSON, one module per resource), and the public
//! webhook ingress under `/webhooks`. `docs/openapi.yaml` documents every route; a
//! test checks it against [`router`].

pub mod auth;
pub mod error;
pub mod extract;

use axum::Router;
use axum::routing::get;
use serde_json::json;

use crate::app::AppState;
use error::ApiError;

/// The whole HTTP surface of the server.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new().route("/health", get(health));
    Router::new()
        .nest("/v1", v1)
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
}

/// Liveness: no authentication, no store access.
async fn health() -> extract::Json<serde_json::Value> {
    extract::Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}
