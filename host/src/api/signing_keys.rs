//! `/v1/signing-keys`: the RSA public keys the tenant's backend signs embed JWTs with
//! (`docs/embedding.md`). Several may be active; deleting one deactivates it (kept for
//! the audit trail, it verifies nothing from then on).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::extract::{Json, Path};
use crate::app::AppState;
use crate::embed::keys::parse_spki_pem;
use crate::store::signing_keys::{NewSigningKey, SigningKey};

/// Longest label, in bytes.
const MAX_LABEL_BYTES: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signing-keys", get(list).post(create))
        .route("/signing-keys/{id}", delete(deactivate))
}

/// A signing key as the API shows it (never the PEM: the fingerprint identifies it).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SigningKeyView {
    id: String,
    label: Option<String>,
    fingerprint: String,
    created_ms: i64,
    active: bool,
    deactivated_ms: Option<i64>,
}

impl From<SigningKey> for SigningKeyView {
    fn from(key: SigningKey) -> Self {
        SigningKeyView {
            active: key.active(),
            id: key.id,
            label: key.label,
            fingerprint: key.fingerprint,
            created_ms: key.created_ms,
            deactivated_ms: key.deactivated_ms,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewKey {
    public_key_pem: String,
    #[serde(default)]
    label: Option<String>,
}

async fn create(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Json(request): Json<NewKey>,
) -> Result<impl IntoResponse, ApiError> {
    let label = match request.label.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(label) if label.len() > MAX_LABEL_BYTES => {
            return Err(ApiError::invalid(format!(
                "`label` is longer than {MAX_LABEL_BYTES} bytes"
            )));
        }
        Some(label) => Some(label.to_string()),
    };
    let key = parse_spki_pem(&request.public_key_pem)
        .map_err(|err| ApiError::invalid(format!("`publicKeyPem`: {err}")))?;
    let key = state
        .store
        .add_signing_key(
            &tenant.id,
            NewSigningKey {
                label,
                public_key_pem: key.pem,
                fingerprint: key.fingerprint,
            },
        )
        .await?;
    let location = format!("/v1/signing-keys/{}", key.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(SigningKeyView::from(key)),
    ))
}

async fn list(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let keys: Vec<SigningKeyView> = state
        .store
        .list_signing_keys(&tenant.id)
        .await?
        .into_iter()
        .map(SigningKeyView::from)
        .collect();
    Ok(Json(serde_json::json!({ "signingKeys": keys })))
}

async fn deactivate(
    TenantAuth(tenant): TenantAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SigningKeyView>, ApiError> {
    let key = state.store.deactivate_signing_key(&tenant.id, &id).await?;
    Ok(Json(key.into()))
}
