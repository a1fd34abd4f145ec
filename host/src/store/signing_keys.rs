//! Storage of tenants' embed signing keys: the RSA public keys a tenant's backend signs
//! its customers' users' JWTs with. A deactivated key is kept, for the audit trail,
//! but no longer verifies anything.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

/// How many keys a tenant may have active at once: a token without `kid` is tried
/// against each of them.
pub const MAX_ACTIVE_KEYS: usize = 10;

/// A signing key as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    pub id: String,
    pub label: Option<String>,
    /// The public key, SPKI PEM, as the tenant sent it.
    #[serde(skip)]
    pub public_key_pem: String,
    /// sha256 of the key's DER, hex.
    pub fingerprint: String,
    pub created_ms: i64,
    /// When it was deactivated; `None` while it verifies tokens.
    #[serde(skip)]
    pub deactivated_ms: Option<i64>,
}

impl SigningKey {
    /// Whether the key still verifies tokens.
    pub fn active(&self) -> bool {
        self.deactivated_ms.is_none()
    }
}

/// What registering a key stores (checked by `embed::keys` before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSigningKey {
    pub label: Option<String>,
    pub public_key_pem: String,
    pub fingerprint: String,
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Registers an active key. The same key (by fingerprint) active twice, or more
    /// than [`MAX_ACTIVE_KEYS`] active keys, is a [`StoreError::Conflict`].
    async fn add_signing_key(
        &self,
        tenant: &str,
        key: NewSigningKey,
    ) -> Result<SigningKey, StoreError>;
    /// Every key of the tenant, deactivated ones included, oldest first.
    async fn list_signing_keys(&self, tenant: &str) -> Result<Vec<SigningKey>, StoreError>;
    /// The tenant's active keys, oldest first: what verifies its tokens.
    async fn active_signing_keys(&self, tenant: &str) -> Result<Vec<SigningKey>, StoreError>;
    /// Deactivates a key (again is a no-op) and returns it as it now is; a key of
    /// another tenant is [`StoreError::NotFound`].
    async fn deactivate_signing_key(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<SigningKey, StoreError>;
}
