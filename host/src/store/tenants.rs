//! Tenants and their API keys: the operator creates a tenant (`sluice tenant create`),
//! its key is shown once, and every API call is resolved to its tenant by the key's
//! sha256.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

/// A tenant: a SaaS vendor using Sluice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates a tenant with one API key, given by its sha256 hex digest and the
    /// key's first characters (for display).
    async fn create_tenant(
        &self,
        name: &str,
        key_hash: &str,
        key_prefix: &str,
    ) -> Result<Tenant, StoreError>;
    /// Adds another API key to a tenant.
    async fn add_api_key(
        &self,
        tenant_id: &str,
        key_hash: &str,
        key_prefix: &str,
    ) -> Result<(), StoreError>;
    /// A tenant by id.
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;
    /// The tenant an API key (by sha256 hex digest) belongs to.
    async fn tenant_by_key(&self, key_hash: &str) -> Result<Option<Tenant>, StoreError>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
}
