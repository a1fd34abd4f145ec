//! The runtime's capability traits backed by the host: guest state in the store
//! ([`HostStateStore`], which enforces the server's state quota), an instance's
//! decrypted connections, and the namespace keys that scope state to a tenant's
//! instance, flow or integration.

use std::sync::Arc;

use async_trait::async_trait;
use sluice_runtime::{StateNamespace, StateQuota, StateStore, StateStoreError};

use crate::store::Store;

/// The key a namespace is stored under (the tenant is a column of its own).
pub fn namespace_key(namespace: &StateNamespace) -> (&str, String) {
    match namespace {
        StateNamespace::Execution { tenant, execution } => {
            (tenant, format!("execution:{execution}"))
        }
        StateNamespace::Flow {
            tenant,
            instance,
            flow,
        } => (tenant, format!("flow:{instance}:{flow}")),
        StateNamespace::Instance { tenant, instance } => (tenant, format!("instance:{instance}")),
        StateNamespace::Integration {
            tenant,
            integration,
        } => (tenant, format!("integration:{integration}")),
    }
}

/// Prefixes of the namespaces an instance owns (its flows' and its own), which go
/// when the instance is removed.
pub fn instance_namespace_prefixes(instance: &str) -> [String; 2] {
    [format!("flow:{instance}:"), format!("instance:{instance}")]
}

/// Guest state in the host's store, within `quota`.
#[derive(Clone)]
pub struct HostStateStore {
    store: Arc<dyn Store>,
    quota: StateQuota,
}

impl HostStateStore {
    pub fn new(store: Arc<dyn Store>, quota: StateQuota) -> Self {
        HostStateStore { store, quota }
    }
}

fn unavailable(err: crate::store::StoreError) -> StateStoreError {
    tracing::warn!(error = %err, "state store failure");
    StateStoreError::Unavailable("the state store failed; retry later".into())
}

fn refused(err: crate::store::QuotaExceeded) -> StateStoreError {
    StateStoreError::QuotaExceeded(err.0)
}

#[async_trait]
impl StateStore for HostStateStore {
    async fn get(
        &self,
        namespace: &StateNamespace,
        key: &str,
    ) -> Result<Option<String>, StateStoreError> {
        let (tenant, ns) = namespace_key(namespace);
        self.store
            .state_get(tenant, &ns, key)
            .await
            .map_err(unavailable)
    }

    async fn set(
        &self,
        namespace: &StateNamespace,
        key: &str,
        value: String,
    ) -> Result<(), StateStoreError> {
        let (tenant, ns) = namespace_key(namespace);
        self.store
            .state_set(
                tenant,
                &ns,
                &namespace.quota_group(),
                key,
                &value,
                &self.quota,
            )
            .await
            .map_err(unavailable)?
            .map_err(refused)
    }

    async fn delete(&self, namespace: &StateNamespace, key: &str) -> Result<bool, StateStoreError> {
        let (tenant, ns) = namespace_key(namespace);
        self.store
            .state_delete(tenant, &ns, key)
            .await
            .map_err(unavailable)
    }

    async fn compare_and_swap(
        &self,
        namespace: &StateNamespace,
        key: &str,
        expected: Option<&str>,
        new: Option<String>,
    ) -> Result<bool, StateStoreError> {
        let (tenant, ns) = namespace_key(namespace);
        self.store
            .state_compare_and_swap(
                tenant,
                &ns,
                &namespace.quota_group(),
                key,
                expected,
                new.as_deref(),
                &self.quota,
            )
            .await
            .map_err(unavailable)?
            .map_err(refused)
    }
}
