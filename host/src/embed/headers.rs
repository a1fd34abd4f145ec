//! The one middleware of every embedded response: resolves the session a path names
//! (for the pages' extractor), then sets a strict CSP framed by the tenant's origins, no
//! referrer (session tokens are in URLs), no sniffing, and no caching of pages.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::session;
use crate::app::AppState;
use crate::store::now_ms;

/// Everything but `frame-ancestors`: scripts, styles and fetches from this server
/// only (no inline code), forms posted here only, no `<base>`.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'";

/// A response extension naming the tenant whose origins may frame a response that has
/// no session in its path (the entry page, which learns the tenant from the JWT).
#[derive(Debug, Clone)]
pub struct FramedFor(pub String);

/// The CSP of a page that `frame_ancestors` (canonical origins) may frame.
pub fn content_security_policy(frame_ancestors: &[String]) -> String {
    if frame_ancestors.is_empty() {
        format!("{POLICY}; frame-ancestors 'none'")
    } else {
        format!("{POLICY}; frame-ancestors {}", frame_ancestors.join(" "))
    }
}

pub(crate) async fn protect(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let mut tenant = None;
    if let Some(token) = session::token_of(request.uri().path()) {
        let resolved = session::resolve(&*state.store, token, now_ms()).await;
        tenant = resolved.tenant.clone();
        request.extensions_mut().insert(resolved);
    }
    let mut response = next.run(request).await;
    let tenant = tenant.or_else(|| {
        response
            .extensions()
            .get::<FramedFor>()
            .map(|framed| framed.0.clone())
    });
    let frame_ancestors = match tenant {
        None => Vec::new(),
        Some(tenant) => match state.store.embed_settings(&tenant).await {
            Ok(settings) => settings.map(|s| s.frame_ancestors).unwrap_or_default(),
            Err(err) => {
                // Failing closed: the page is not framed rather than framed by anyone.
                tracing::error!(error = %err, "embedded page: reading the embed settings");
                Vec::new()
            }
        },
    };
    let headers = response.headers_mut();
    let policy = HeaderValue::from_str(&content_security_policy(&frame_ancestors))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_origins_frame_nothing() {
        let policy = content_security_policy(&[]);
        assert!(policy.ends_with("; frame-ancestors 'none'"), "{policy}");
        assert!(policy.starts_with("default-src 'none'; script-src 'self'"));
        let policy = content_security_policy(&["https://a.com".into(), "http://b:8080".into()]);
        assert!(
            policy.ends_with("; frame-ancestors https://a.com http://b:8080"),
            "{policy}"
        );
    }
}
