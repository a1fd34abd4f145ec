//! Storage of the component registry: integer versions per (tenant, component key),
//! each naming one build by its sha256, with the bytes stored once per hash so a new
//! engine can recompile them.

use async_trait::async_trait;
use bytes::Bytes;

use super::StoreError;

/// One registry version of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentVersion {
    pub key: String,
    /// 1, 2, ... per (tenant, key); a number is never given out twice, even after a
    /// delete.
    pub version: i64,
    /// sha256 of the bytes, 64 hex digits.
    pub hash: String,
    /// `component` or `flow`.
    pub world: String,
    /// The manifest JSON the component returned.
    pub manifest: String,
    /// Size of the bytes.
    pub size: i64,
    pub created_ms: i64,
    /// What compiling it cost.
    pub compile: CompileRecord,
}

/// What compiling a component version cost, as measured when it was uploaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompileRecord {
    /// Wall time of the compile, in microseconds (unknown for versions uploaded
    /// before compiles were measured).
    pub time_us: Option<i64>,
    /// Peak resident memory of the compile worker, in bytes (unknown, too, when the
    /// component was compiled in process).
    pub peak_memory_bytes: Option<i64>,
}

/// What an upload stores.
#[derive(Debug, Clone)]
pub struct NewComponentVersion {
    pub key: String,
    pub hash: String,
    pub world: String,
    pub manifest: String,
    pub bytes: Bytes,
    pub compile: CompileRecord,
}

/// A component key of a tenant with its newest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSummary {
    pub latest: ComponentVersion,
    /// How many versions the key has.
    pub versions: i64,
}

/// What pins a component version: integration versions, and instances deployed from
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentUsers {
    /// (integration key, version).
    pub integration_versions: Vec<(String, i64)>,
    /// (instance id, instance name).
    pub instances: Vec<(String, String)>,
}

#[async_trait]
pub trait ComponentStore: Send + Sync {
    /// Stores an uploaded build: the version of the same key with the same hash if one
    /// exists (`false`), else a new version numbered after every earlier one (`true`).
    async fn put_component_version(
        &self,
        tenant: &str,
        new: NewComponentVersion,
    ) -> Result<(ComponentVersion, bool), StoreError>;
    /// Every key of the tenant with its newest version, by key.
    async fn list_components(&self, tenant: &str) -> Result<Vec<ComponentSummary>, StoreError>;
    /// The versions of a key, oldest first (empty when the key is unknown).
    async fn component_versions(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Vec<ComponentVersion>, StoreError>;
    async fn component_version(
        &self,
        tenant: &str,
        key: &str,
        version: i64,
    ) -> Result<Option<ComponentVersion>, StoreError>;
    /// The bytes of a version (for recompiling when the artifact cache lacks them).
    async fn component_bytes(
        &self,
        tenant: &str,
        key: &str,
        version: i64,
    ) -> Result<Option<Bytes>, StoreError>;
    /// Deletes a version unless an integration version pins it: then nothing is
    /// deleted and the users are returned. Bytes no other version uses are deleted too.
    async fn delete_component_version(
        &self,
        tenant: &str,
        key: &str,
        version: i64,
    ) -> Result<Result<(), ComponentUsers>, StoreError>;
}
