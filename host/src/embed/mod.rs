//! The embedded pages: HTML a tenant shows its customers' users in an iframe of its own
//! app (`docs/embedding.md`). `GET /embed?jwt=` verifies the tenant-signed JWT (`jwt`)
//! and opens a session (`session`); the session's pages live under `/embed/s/{token}/`.
//!
//! Adding a page of a session: write a handler that takes [`EmbedSession`] (and
//! `State<AppState>`), renders an askama template extending `embed/base.html` with
//! [`page::render`] and fails with [`EmbedError`]; register it in [`session_routes`]
//! (or merge a `routes()` of its own module there) as `/embed/s/{session}/...`. The
//! middleware of [`router`] resolves the session and sets the security headers.

pub mod assets;
pub mod entry;
pub mod error;
pub mod headers;
pub mod instances;
pub mod jwt;
pub mod keys;
pub mod marketplace;
pub mod origins;
pub mod page;
pub mod session;
pub mod wizard;

use axum::Router;
use axum::routing::{any, get};

use crate::app::AppState;
pub use error::EmbedError;
pub use session::EmbedSession;

/// Every `/embed` route, behind the security-header middleware.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/embed", get(entry::enter))
        .route("/embed/assets/htmx.min.js", get(assets::htmx))
        .route("/embed/assets/embed.css", get(assets::css))
        .route("/embed/assets/wizard.js", get(assets::wizard))
        .merge(session_routes())
        // Any other /embed path: the HTML 404 page, with the same headers.
        .route("/embed/{*rest}", any(not_found))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::protect,
        ))
}

/// The pages of a session; each handler takes [`EmbedSession`].
pub fn session_routes() -> Router<AppState> {
    Router::new()
        .route("/embed/s/{session}/", get(marketplace::show))
        .route("/embed/s/{session}/instances", get(instances::list))
        .route("/embed/s/{session}/instances/{id}", get(instances::show))
        .merge(wizard::routes())
}

async fn not_found() -> EmbedError {
    EmbedError::NotFound("page".into())
}
