//! State scopes of a flow execution: a [`StateStore`] wrapper that keeps the
//! `execution` scope in memory for one execution (dropped with it) and passes the
//! `flow`, `instance` and `integration` scopes to the caller's persistent store.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{MemoryStateStore, StateNamespace, StateStore, StateStoreError};

/// The state store of one execution.
pub struct ExecutionState {
    execution: MemoryStateStore,
    persistent: Arc<dyn StateStore>,
}

impl ExecutionState {
    /// Wraps `persistent`; the execution scope starts empty.
    pub fn new(persistent: Arc<dyn StateStore>) -> Self {
        ExecutionState {
            execution: MemoryStateStore::new(),
            persistent,
        }
    }

    /// The execution scope's entries, for the record or tests.
    pub fn execution_entries(&self, namespace: &StateNamespace) -> Vec<(String, String)> {
        self.execution.entries(namespace)
    }

    fn store(&self, namespace: &StateNamespace) -> &dyn StateStore {
        match namespace {
            StateNamespace::Execution { .. } => &self.execution,
            _ => self.persistent.as_ref(),
        }
    }
}

#[async_trait]
impl StateStore for ExecutionState {
    async fn get(
        &self,
        namespace: &StateNamespace,
        key: &str,
    ) -> Result<Option<String>, StateStoreError> {
        self.store(namespace).get(namespace, key).await
    }

    async fn set(
        &self,
        namespace: &StateNamespace,
        key: &str,
        value: String,
    ) -> Result<(), StateStoreError> {
        self.store(namespace).set(namespace, key, value).await
    }

    async fn delete(&self, namespace: &StateNamespace, key: &str) -> Result<bool, StateStoreError> {
        self.store(namespace).delete(namespace, key).await
    }

    async fn compare_and_swap(
        &self,
        namespace: &StateNamespace,
        key: &str,
        expected: Option<&str>,
        new: Option<String>,
    ) -> Result<bool, StateStoreError> {
        self.store(namespace)
            .compare_and_swap(namespace, key, expected, new)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn execution_scope_stays_in_the_wrapper() {
        let persistent = Arc::new(MemoryStateStore::new());
        let state = ExecutionState::new(persistent.clone());
        let execution = StateNamespace::Execution {
            tenant: "t".into(),
            execution: "e".into(),
        };
        let instance = StateNamespace::Instance {
            tenant: "t".into(),
            instance: "i".into(),
        };
        state.set(&execution, "a", "1".into()).await.unwrap();
        state.set(&instance, "b", "2".into()).await.unwrap();
        assert_eq!(
            state.get(&execution, "a").await.unwrap().as_deref(),
            Some("1")
        );
        assert!(persistent.entries(&execution).is_empty());
        assert_eq!(persistent.entries(&instance).len(), 1);
        assert!(
            state
                .compare_and_swap(&execution, "a", Some("1"), None)
                .await
                .unwrap()
        );
        assert!(state.execution_entries(&execution).is_empty());
    }
}
