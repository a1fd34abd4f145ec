//! Persisted guest state for the flow, instance and integration scopes: the backend of
//! the runtime's `StateStore` capability (the execution scope never reaches the store;
//! the flow engine keeps it in memory for one run).

use async_trait::async_trait;

use super::StoreError;

/// Canonical-JSON values by (tenant, namespace, key); `namespace` is an opaque string
/// the caller derives from the runtime's `StateNamespace`.
#[async_trait]
pub trait SharedStateStore: Send + Sync {
    async fn state_get(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError>;
    async fn state_set(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError>;
    /// Returns whether the key existed.
    async fn state_delete(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<bool, StoreError>;
    /// Sets (`new` of `None`: deletes) the key when its value equals `expected`
    /// (`None`: absent), atomically. Returns whether it did.
    async fn state_compare_and_swap(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Deletes every key of the namespaces whose serialized form starts with `prefix`
    /// (an instance's flow and instance scopes, when it is removed). Returns the count.
    async fn state_delete_prefix(&self, tenant: &str, prefix: &str) -> Result<u64, StoreError>;
}
