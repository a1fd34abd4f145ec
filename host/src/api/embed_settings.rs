//! `/v1/embed-settings`: which origins may frame the tenant's embedded pages (their
//! CSP `frame-ancestors`) and where the OAuth flow sends users afterwards. Replaced as
//! a whole by `PUT`; a tenant that never set them gets the defaults (nothing frames).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::auth::TenantAuth;
use super::error::{ApiError, ErrorDetail};
use super::extract::Json;
use crate::app::AppState;
use crate::embed::origins::{MAX_ORIGINS, parse_origin, parse_redirect};
use crate::store::embed_settings::EmbedSettings;

pub fn routes() -> Router<AppState> {
    Router::new().route("/embed-settings", get(fetch).put(replace))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SettingsView {
    frame_ancestors: Vec<String>,
    oauth_success_redirect: Option<String>,
    oauth_failure_redirect: Option<String>,
    /// `None` until the tenant first sets them.
    updated_ms: Option<i64>,
}

impl From<Option<EmbedSettings>> for SettingsView {
    fn from(settings: Option<EmbedSettings>) -> Self {
        let updated_ms = settings.as_ref().map(|settings| settings.updated_ms);
        let settings = settings.unwrap_or_default();
        SettingsView {
            frame_ancestors: settings.frame_ancestors,
            oauth_success_redirect: settings.oauth_success_redirect,
            oauth_failure_redirect: settings.oauth_failure_redirect,
            updated_ms,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsRequest {
    frame_ancestors: Vec<String>,
    #[serde(default)]
    oauth_success_redirect: Option<String>,
    #[serde(default)]
    oauth_failure_redirect: Option<String>,
}

async fn fetch(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(state.store.embed_settings(&tenant.id).await?.into()))
}

/// Every problem of a request, each at its path.
fn check(request: SettingsRequest) -> Result<EmbedSettings, Vec<ErrorDetail>> {
    let mut problems = Vec::new();
    let mut problem = |path: String, message: String| {
        problems.push(ErrorDetail {
            path,
            message,
            line: None,
            column: None,
        });
    };
    if request.frame_ancestors.len() > MAX_ORIGINS {
        problem(
            "frameAncestors".into(),
            format!("at most {MAX_ORIGINS} origins"),
        );
    }
    let mut frame_ancestors: Vec<String> = Vec::new();
    for (index, origin) in request.frame_ancestors.iter().enumerate() {
        match parse_origin(origin.trim()) {
            Ok(origin) if !frame_ancestors.contains(&origin) => frame_ancestors.push(origin),
            Ok(_) => {}
            Err(err) => problem(format!("frameAncestors[{index}]"), format!("{err}")),
        }
    }
    let mut redirect = |name: &str, url: Option<String>| match url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(url) => match parse_redirect(url) {
            Ok(url) => Some(url),
            Err(err) => {
                problem(name.into(), format!("{err}"));
                None
            }
        },
    };
    let oauth_success_redirect = redirect("oauthSuccessRedirect", request.oauth_success_redirect);
    let oauth_failure_redirect = redirect("oauthFailureRedirect", request.oauth_failure_redirect);
    if problems.is_empty() {
        Ok(EmbedSettings {
            frame_ancestors,
            oauth_success_redirect,
            oauth_failure_redirect,
            updated_ms: 0,
        })
    } else {
        Err(problems)
    }
}

async fn replace(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Json(request): Json<SettingsRequest>,
) -> Result<Json<SettingsView>, ApiError> {
    let settings = check(request).map_err(|problems| {
        let summary = problems
            .iter()
            .map(|problem| format!("`{}` {}", problem.path, problem.message))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::invalid(summary).with_details(problems)
    })?;
    let stored = state.store.put_embed_settings(&tenant.id, settings).await?;
    Ok(Json(Some(stored).into()))
}
