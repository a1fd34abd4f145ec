//! Storage of embed sessions: what a verified embed JWT opened for one user of one
//! customer. Only the sha256 of a session's token is stored; the token itself travels
//! in the embedded pages' paths.

use async_trait::async_trait;

use super::StoreError;

/// A session to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmbedSession {
    /// sha256 of the session token, hex.
    pub token_hash: String,
    pub tenant_id: String,
    pub customer_id: String,
    /// The JWT's `sub`: the user in the tenant's own system.
    pub user_sub: String,
    /// The JWT's `name`.
    pub user_name: Option<String>,
    /// The JWT's `exp`, in milliseconds.
    pub expires_ms: i64,
}

/// A stored session with its customer, read in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEmbedSession {
    pub tenant_id: String,
    pub customer_id: String,
    pub customer_name: String,
    pub customer_external_id: Option<String>,
    pub user_sub: String,
    pub user_name: Option<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
}

/// How long an expired session is kept, so that a page asked for with it can still
/// say "expired" (and be framed by its tenant's origins) rather than "unknown".
pub const EXPIRED_SESSION_KEPT_MS: i64 = 24 * 60 * 60 * 1000;

#[async_trait]
pub trait EmbedSessionStore: Send + Sync {
    /// Stores a session, and deletes sessions that expired more than
    /// [`EXPIRED_SESSION_KEPT_MS`] before `now_ms`.
    async fn create_embed_session(
        &self,
        session: &NewEmbedSession,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// The session with this token hash, expired or not (the caller compares
    /// `expires_ms`); `None` when unknown, or its customer is gone.
    async fn embed_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<StoredEmbedSession>, StoreError>;
}
