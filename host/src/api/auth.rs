//! Tenant authentication: `Authorization: Bearer <API key>`. The key's sha256 names
//! the tenant; every handler that takes [`TenantAuth`] is scoped to that tenant.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::app::AppState;
use crate::store::tenants::Tenant;

/// The tenant a request is authenticated as.
#[derive(Debug, Clone)]
pub struct TenantAuth(pub Tenant);

/// The sha256 hex digest under which an API key is stored.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                unauthorized("send the tenant's API key as `Authorization: Bearer <key>`")
            })?;
        let key = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <key>`"))?;
        match state.store.tenant_by_key(&key_hash(key)).await? {
            Some(tenant) => Ok(TenantAuth(tenant)),
            None => Err(unauthorized("unknown API key")),
        }
    }
}
