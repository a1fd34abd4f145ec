//! Embed sessions: opened by a verified JWT for one user of one customer (created on
//! first sight), named by a random token in the path of every page (`/embed/s/{token}/`;
//! no cookies, which browsers drop in third-party iframes); [`EmbedSession`] hands one over.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::error::EmbedError;
use super::jwt::EmbedClaims;
use crate::secrets::{SecretsError, random_bytes};
use crate::store::embed_sessions::NewEmbedSession;
use crate::store::{Store, StoreError};

/// Where a session's pages live: `/embed/s/{token}/`.
pub const PREFIX: &str = "/embed/s/";

/// The session of an embedded page: which tenant, customer and user it is for. A
/// handler that takes it only runs for a known, unexpired session; others get the
/// 401 page.
///
/// ```ignore
/// async fn page(session: EmbedSession, State(state): State<AppState>)
///     -> Result<Response, EmbedError> { /* session.tenant_id, session.customer_id */ }
/// ```
/// The embed router's middleware (`headers`) resolves the session once per request
/// (and frames the page for its tenant's origins); the extractor only hands it over,
/// so it works on routes of [`super::router`] only (elsewhere: a 500 page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedSession {
    pub tenant_id: String,
    pub customer_id: String,
    /// The customer's external id (the JWT's `customer`), unless the tenant removed it
    /// since.
    pub customer_external_id: Option<String>,
    pub customer_name: String,
    /// The JWT's `sub`: the user in the tenant's own system.
    pub user_sub: String,
    /// The JWT's `name`.
    pub user_name: Option<String>,
    /// The session token, as in the path. Never log it.
    pub token: String,
    /// When the session ends (the JWT's `exp`), in milliseconds.
    pub expires_ms: i64,
}

impl EmbedSession {
    /// `/embed/s/{token}`: every link of a session's pages starts with it.
    pub fn base_path(&self) -> String {
        format!("{PREFIX}{}", self.token)
    }

    /// A link to `rest` (`"instances"`, `"integrations/{key}"`) within the session.
    pub fn link(&self, rest: &str) -> String {
        format!("{}/{}", self.base_path(), rest.trim_start_matches('/'))
    }
}

/// Why a request has no session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionRejection {
    #[error("this page's session is not known; open it again from your application")]
    Unknown,
    #[error("your session has expired; reload the page in your application to continue")]
    Expired,
    /// The route is not under the embed router's middleware (a bug of the route).
    #[error("the page's session was not resolved")]
    NotResolved,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The session a request's path names, as the embed middleware resolved it, with the
/// tenant it belongs to when known (expired sessions included).
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub session: Result<EmbedSession, SessionRejection>,
    pub tenant: Option<String>,
}

/// The session token in `path`, if it is a session page's path.
pub(crate) fn token_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(PREFIX)?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// The sha256 hex digest under which a token is stored.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` looks like one [`open`] makes (64 hex digits): anything else is
/// unknown without asking the store.
fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Looks up the session of `token` at `now_ms`.
pub(crate) async fn resolve(store: &dyn Store, token: &str, now_ms: i64) -> Resolved {
    if !well_formed(token) {
        return Resolved {
            session: Err(SessionRejection::Unknown),
            tenant: None,
        };
    }
    match store.embed_session(&token_hash(token)).await {
        Err(err) => Resolved {
            session: Err(SessionRejection::Store(err)),
            tenant: None,
        },
        Ok(None) => Resolved {
            session: Err(SessionRejection::Unknown),
            tenant: None,
        },
        Ok(Some(stored)) if stored.expires_ms <= now_ms => Resolved {
            session: Err(SessionRejection::Expired),
            tenant: Some(stored.tenant_id),
        },
        Ok(Some(stored)) => Resolved {
            tenant: Some(stored.tenant_id.clone()),
            session: Ok(EmbedSession {
                tenant_id: stored.tenant_id,
                customer_id: stored.customer_id,
                customer_external_id: stored.customer_external_id,
                customer_name: stored.customer_name,
                user_sub: stored.user_sub,
                user_name: stored.user_name,
                token: token.to_string(),
                expires_ms: stored.expires_ms,
            }),
        },
    }
}

/// Why a session could not be opened for a verified token.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] SecretsError),
}

/// Opens a session for verified `claims`: the customer with the token's external id
/// (created, named by `customer_name` or else the external id, when there is none),
/// and a new token, returned. The session ends at the token's `exp`.
pub async fn open(
    store: &dyn Store,
    claims: &EmbedClaims,
    now_ms: i64,
) -> Result<String, OpenError> {
    let customer = customer_for(store, claims).await?;
    let token = hex::encode(random_bytes::<32>()?);
    store
        .create_embed_session(
            &NewEmbedSession {
                token_hash: token_hash(&token),
                tenant_id: claims.organization.clone(),
                customer_id: customer,
                user_sub: claims.sub.clone(),
                user_name: claims.name.clone(),
                expires_ms: claims.exp.saturating_mul(1000),
            },
            now_ms,
        )
        .await?;
    Ok(token)
}

/// The id of the tenant's customer with the token's external id, created if needed.
async fn customer_for(store: &dyn Store, claims: &EmbedClaims) -> Result<String, StoreError> {
    let (tenant, external_id) = (&claims.organization, claims.customer.as_str());
    if let Some(found) = store
        .list_customers(tenant, Some(external_id))
        .await?
        .first()
    {
        return Ok(found.id.clone());
    }
    let name = claims.customer_name.as_deref().unwrap_or(external_id);
    match store.create_customer(tenant, name, Some(external_id)).await {
        Ok(created) => Ok(created.id),
        // Two first tokens of one customer at once: the other created it.
        Err(StoreError::Conflict(_)) => store
            .list_customers(tenant, Some(external_id))
            .await?
            .first()
            .map(|found| found.id.clone())
            .ok_or_else(|| StoreError::Backend("customer vanished after a conflict".into())),
        Err(other) => Err(other),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for EmbedSession {
    type Rejection = EmbedError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, EmbedError> {
        match parts.extensions.get::<Resolved>() {
            Some(resolved) => resolved.session.clone().map_err(EmbedError::Session),
            None => Err(EmbedError::Session(SessionRejection::NotResolved)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_the_first_segment_after_the_prefix() {
        assert_eq!(token_of("/embed/s/abc/instances/1"), Some("abc"));
        assert_eq!(token_of("/embed/s/abc/"), Some("abc"));
        assert_eq!(token_of("/embed/s/abc"), Some("abc"));
        assert_eq!(token_of("/embed/assets/x"), None);
        assert_eq!(token_of("/embed"), None);
    }

    #[test]
    fn only_64_hex_digits_are_asked_for() {
        assert!(well_formed(&"a1".repeat(32)));
        assert!(!well_formed("a1"));
        assert!(!well_formed(&"zz".repeat(32)));
    }
}
