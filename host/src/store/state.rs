//! Persisted guest state for the flow, instance and integration scopes: the backend of
//! the runtime's `StateStore` capability (the execution scope never reaches the store;
//! the flow engine keeps it in memory for one run), with the state quotas enforced in
//! the same transaction as each write.

use async_trait::async_trait;
use sluice_runtime::{StateQuota, StateUsage};

use super::StoreError;

/// A write refused because it would pass a state quota; nothing was written. The
/// message names the quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuotaExceeded(pub String);

/// Canonical-JSON values by (tenant, namespace, key); `namespace` is an opaque string
/// the caller derives from the runtime's `StateNamespace`, and `group` the quota group
/// it counts against (`StateNamespace::quota_group`). Usage counters are exact: they
/// change in the transaction of the write that changes them.
#[async_trait]
pub trait SharedStateStore: Send + Sync {
    async fn state_get(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Sets the key unless the write would take `group` or the tenant past `quota`
    /// (an overwrite counts only what it adds).
    async fn state_set(
        &self,
        tenant: &str,
        namespace: &str,
        group: &str,
        key: &str,
        value: &str,
        quota: &StateQuota,
    ) -> Result<Result<(), QuotaExceeded>, StoreError>;
    /// Returns whether the key existed. Deleting always frees its bytes and key.
    async fn state_delete(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<bool, StoreError>;
    /// Sets (`new` of `None`: deletes) the key when its value equals `expected`
    /// (`None`: absent), atomically and within `quota`. Returns whether it did.
    #[allow(clippy::too_many_arguments)]
    async fn state_compare_and_swap(
        &self,
        tenant: &str,
        namespace: &str,
        group: &str,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
        quota: &StateQuota,
    ) -> Result<Result<bool, QuotaExceeded>, StoreError>;
    /// Deletes every key of the namespaces whose serialized form starts with `prefix`
    /// (an instance's flow and instance scopes, when it is removed), freeing their
    /// usage. Returns the count.
    async fn state_delete_prefix(&self, tenant: &str, prefix: &str) -> Result<u64, StoreError>;
    /// Bytes and keys held by `group` of `tenant` (`None`: all of the tenant's state).
    async fn state_usage(
        &self,
        tenant: &str,
        group: Option<&str>,
    ) -> Result<StateUsage, StoreError>;
}
