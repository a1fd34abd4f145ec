//! Storage of integration definitions: integer versions per (tenant, integration key),
//! each an immutable definition whose component pins name registry versions.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// The registry version a definition's component key resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub version: i64,
    /// sha256 of the component's bytes.
    pub hash: String,
}

/// One version of an integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationVersion {
    pub key: String,
    pub version: i64,
    /// The definition as canonical JSON, pins resolved (`{version: N, hash}`).
    pub definition: String,
    /// sha256 of `definition`: equal definitions are the same version.
    pub definition_hash: String,
    /// Component key → registry version.
    pub pins: BTreeMap<String, Pin>,
    pub created_ms: i64,
}

/// What a publish stores.
#[derive(Debug, Clone)]
pub struct NewIntegrationVersion {
    pub key: String,
    pub definition: String,
    pub definition_hash: String,
    pub pins: BTreeMap<String, Pin>,
}

/// An integration key of a tenant with its newest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationSummary {
    pub latest: IntegrationVersion,
    pub versions: i64,
}

#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// Stores a definition: the version of the same key with the same definition hash
    /// if one exists (`false`), else the next version (`true`). Every pin must name an
    /// existing component version with that hash, checked in the same transaction as
    /// the insert (a [`StoreError::Conflict`] otherwise), so a concurrent delete of a
    /// pinned component cannot slip in between.
    async fn put_integration_version(
        &self,
        tenant: &str,
        new: NewIntegrationVersion,
    ) -> Result<(IntegrationVersion, bool), StoreError>;
    /// Every integration key of the tenant with its newest version, by key.
    async fn list_integrations(&self, tenant: &str) -> Result<Vec<IntegrationSummary>, StoreError>;
    /// The versions of a key, oldest first (empty when the key is unknown).
    async fn integration_versions(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Vec<IntegrationVersion>, StoreError>;
    async fn integration_version(
        &self,
        tenant: &str,
        key: &str,
        version: i64,
    ) -> Result<Option<IntegrationVersion>, StoreError>;
}
