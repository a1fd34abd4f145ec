//! Storage of component uploads compiled off the request path: each upload's status
//! (`compiling`, then `ready` with the registry version it became, or `failed` with
//! the reason), so a client that was answered before the compile ended can follow it.

use async_trait::async_trait;

use super::StoreError;

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStatus {
    /// Still compiling (or reading its manifest).
    Compiling,
    /// Registered as `version` of `key`; `created` is false when these bytes already
    /// were that version.
    Ready {
        key: String,
        version: i64,
        created: bool,
    },
    /// Refused; `code` and `message` are what a synchronous upload would have answered.
    Failed { code: String, message: String },
}

impl UploadStatus {
    /// The status's name in the API and the store.
    pub fn name(&self) -> &'static str {
        match self {
            UploadStatus::Compiling => "compiling",
            UploadStatus::Ready { .. } => "ready",
            UploadStatus::Failed { .. } => "failed",
        }
    }
}

/// One upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentUpload {
    pub id: String,
    pub size: i64,
    /// sha256 of the bytes, 64 hex digits.
    pub hash: String,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    pub status: UploadStatus,
}

#[async_trait]
pub trait ComponentUploadStore: Send + Sync {
    /// Records a new upload, `compiling`.
    async fn create_upload(
        &self,
        tenant: &str,
        size: i64,
        hash: &str,
    ) -> Result<ComponentUpload, StoreError>;
    /// Records how a `compiling` upload ended. An upload already finished is left as
    /// it is (`false`).
    async fn finish_upload(
        &self,
        tenant: &str,
        id: &str,
        status: UploadStatus,
    ) -> Result<bool, StoreError>;
    /// The tenant's upload `id`, if any.
    async fn component_upload(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ComponentUpload>, StoreError>;
    /// Deletes the uploads that finished before `cutoff_ms` (milliseconds since the
    /// epoch); returns how many. Uploads still compiling are kept.
    async fn delete_uploads_finished_before(&self, cutoff_ms: i64) -> Result<u64, StoreError>;
    /// Fails every upload still `compiling` with `message`: at start-up, the compiles
    /// of a host that stopped will never finish. Returns how many were failed.
    async fn fail_unfinished_uploads(&self, message: &str) -> Result<u64, StoreError>;
}
