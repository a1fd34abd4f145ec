//! `/oauth/callback`: where a provider sends the customer back after consent. It
//! answers a small page (no token in it) that tells the wizard the outcome and closes
//! the popup (a failure stays open, saying why), or, for an authorization in the
//! whole window, sends the customer to the tenant's success or failure redirect;
//! `/oauth/close.js` is that page's script (the pages' CSP forbids inline scripts).

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::extract::Query;
use crate::app::AppState;
use crate::oauth::{self, Authorization, Callback, OAuthError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/callback", get(callback))
        .route("/oauth/close.js", get(close_script))
}

const CLOSE_SCRIPT: &str = r#"// Tells the window that opened this popup how the connection went, and closes it
// when it worked: a failure stays on screen, so the customer can read why.
(function () {
  var outcome = document.getElementById("sluice-oauth");
  if (!outcome || !window.opener) { return; }
  window.opener.postMessage({
    type: "sluice-oauth",
    status: outcome.dataset.status,
    instance: outcome.dataset.instance,
    connection: outcome.dataset.connection
  }, window.location.origin);
  if (outcome.dataset.status === "connected") { window.close(); }
})();
"#;

async fn close_script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        CLOSE_SCRIPT,
    )
        .into_response()
}

/// The callback's page (`templates/oauth/callback.html`; askama escapes every value).
#[derive(askama::Template)]
#[template(path = "oauth/callback.html")]
struct CallbackPage<'a> {
    title: &'a str,
    /// `connected` or `error`, read by `close.js`.
    outcome: &'a str,
    instance: &'a str,
    connection: &'a str,
    message: &'a str,
}

fn page(
    status: StatusCode,
    outcome: &str,
    authorization: Option<&Authorization>,
    message: &str,
) -> Response {
    use askama::Template as _;
    let (instance, connection) = authorization
        .map(|a| (a.instance_id.as_str(), a.connection_key.as_str()))
        .unwrap_or_default();
    let title = if outcome == "connected" {
        "Connected"
    } else {
        "Not connected"
    };
    let rendered = CallbackPage {
        title,
        outcome,
        instance,
        connection,
        message,
    }
    .render();
    let body = match rendered {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "rendering the OAuth callback page");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'",
                ),
            ),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        body,
    )
        .into_response()
}

/// Where the tenant wants a customer sent after an authorization that ran in the
/// whole window (not a popup): its success or failure redirect, with what happened
/// in the query (`instanceId`, `connectionKey`, `status`, and `error` on failure).
async fn tenant_redirect(
    state: &AppState,
    authorization: &Authorization,
    error: Option<&str>,
) -> Option<Response> {
    if authorization.popup {
        return None;
    }
    let settings = match state.store.embed_settings(&authorization.tenant_id).await {
        Ok(settings) => settings?,
        Err(err) => {
            tracing::warn!(error = %err, "reading the tenant's OAuth redirects");
            return None;
        }
    };
    let target = match error {
        None => settings.oauth_success_redirect?,
        Some(_) => settings.oauth_failure_redirect?,
    };
    let mut url = url::Url::parse(&target).ok()?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("instanceId", &authorization.instance_id)
            .append_pair("connectionKey", &authorization.connection_key)
            .append_pair(
                "status",
                if error.is_none() {
                    "connected"
                } else {
                    "error"
                },
            );
        if let Some(error) = error {
            query.append_pair("error", error);
        }
    }
    Some(axum::response::Redirect::to(url.as_str()).into_response())
}

async fn callback(
    axum::extract::State(state): axum::extract::State<AppState>,
    Query(query): Query<Callback>,
) -> Response {
    match oauth::complete(&state, query).await {
        Ok(authorization) => {
            if let Some(redirect) = tenant_redirect(&state, &authorization, None).await {
                return redirect;
            }
            page(
                StatusCode::OK,
                "connected",
                Some(&authorization),
                &format!(
                    "The connection `{}` is connected.",
                    authorization.connection_key
                ),
            )
        }
        Err((Some(authorization), err))
            if !matches!(err, OAuthError::Store(_) | OAuthError::Internal(_)) =>
        {
            let message = format!("The connection failed: {err}");
            if let Some(redirect) = tenant_redirect(&state, &authorization, Some(&message)).await {
                return redirect;
            }
            let status = match err {
                OAuthError::Provider(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            page(status, "error", Some(&authorization), &message)
        }
        Err((authorization, err)) => {
            let status = match &err {
                OAuthError::Store(_) | OAuthError::Internal(_) => {
                    tracing::error!(error = %err, "completing an OAuth authorization failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                OAuthError::Provider(_) => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            let message = match status {
                StatusCode::INTERNAL_SERVER_ERROR => {
                    "The server failed to save the connection; try again.".to_string()
                }
                _ => format!("The connection failed: {err}"),
            };
            page(status, "error", authorization.as_ref(), &message)
        }
    }
}
