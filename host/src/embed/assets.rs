//! The embedded pages' static files, compiled into the binary: htmx (vendored,
//! `host/assets/htmx.min.js`, see `docs/dependencies.md`), the stylesheet and the
//! wizard's script. Their
//! URLs carry a version, so they can be cached for a year.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use sha2::{Digest, Sha256};

/// The vendored htmx release.
pub const HTMX_VERSION: &str = "2.0.11";
const HTMX: &str = include_str!("../../assets/htmx.min.js");
const CSS: &str = include_str!("../../assets/embed.css");
const WIZARD: &str = include_str!("../../assets/wizard.js");

/// A versioned URL may be cached as long as browsers keep anything: a new version is
/// a new URL.
const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";

/// htmx's URL.
pub fn htmx_href() -> &'static str {
    static HREF: LazyLock<String> =
        LazyLock::new(|| format!("/embed/assets/htmx.min.js?v={HTMX_VERSION}"));
    &HREF
}

/// The stylesheet's URL, versioned by the first bytes of its sha256.
pub fn css_href() -> &'static str {
    static HREF: LazyLock<String> = LazyLock::new(|| {
        let digest = hex::encode(Sha256::digest(CSS.as_bytes()));
        format!("/embed/assets/embed.css?v={}", &digest[..12])
    });
    &HREF
}

pub(crate) async fn htmx() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE_FOREVER),
        ],
        HTMX,
    )
}

pub(crate) async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE_FOREVER),
        ],
        CSS,
    )
}

/// The wizard's script (unversioned: short-lived cache, so a new release is picked
/// up within the hour).
pub(crate) async fn wizard() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        WIZARD,
    )
}
