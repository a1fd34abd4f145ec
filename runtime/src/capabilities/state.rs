//! Persisted key/value state: the [`StateStore`] trait a host plugs its storage into,
//! an in-memory store, and the `sluice:flow/state` host functions, which resolve a
//! scope to a [`StateNamespace`], canonicalize JSON and enforce size limits.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::HostContext;
use crate::bindings::flow_world::sluice::flow::state as wit;

/// Where a state key lives. Every variant carries the tenant, so one tenant's keys
/// can never be addressed by another's guest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "camelCase")]
pub enum StateNamespace {
    /// One execution; the host may drop it when the execution ends.
    #[serde(rename_all = "camelCase")]
    Execution { tenant: String, execution: String },
    /// One flow of one instance.
    #[serde(rename_all = "camelCase")]
    Flow {
        tenant: String,
        instance: String,
        flow: String,
    },
    /// All flows of one instance.
    #[serde(rename_all = "camelCase")]
    Instance { tenant: String, instance: String },
    /// All instances of one integration.
    #[serde(rename_all = "camelCase")]
    Integration { tenant: String, integration: String },
}

/// The store could not serve a request; the guest sees `state-error.unavailable`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("state store unavailable: {0}")]
pub struct StateStoreError(pub String);

/// Storage of state values. Values are canonical JSON text (see [`canonical_json`]),
/// so byte equality is JSON equality and compare-and-swap can compare text.
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn get(
        &self,
        namespace: &StateNamespace,
        key: &str,
    ) -> Result<Option<String>, StateStoreError>;
    async fn set(
        &self,
        namespace: &StateNamespace,
        key: &str,
        value: String,
    ) -> Result<(), StateStoreError>;
    /// Returns whether the key existed.
    async fn delete(&self, namespace: &StateNamespace, key: &str) -> Result<bool, StateStoreError>;
    /// Atomically sets (or, with `new` of `None`, deletes) the key when its current
    /// value equals `expected` (`None`: absent). Returns whether it did.
    async fn compare_and_swap(
        &self,
        namespace: &StateNamespace,
        key: &str,
        expected: Option<&str>,
        new: Option<String>,
    ) -> Result<bool, StateStoreError>;
}

/// A state store in process memory; for tests, the harness and single-run CLI use.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    entries: Mutex<HashMap<(StateNamespace, String), String>>,
}

impl MemoryStateStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every entry of `namespace`, sorted by key.
    pub fn entries(&self, namespace: &StateNamespace) -> Vec<(String, String)> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let mut found: Vec<(String, String)> = entries
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect();
        found.sort();
        found
    }

    /// Sets `key` directly (the value must already be canonical JSON, see
    /// [`canonical_json`]); for seeding state before an execution.
    pub fn put(&self, namespace: &StateNamespace, key: &str, value: String) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((namespace.clone(), key.to_string()), value);
    }

    /// The value of `key`, if set.
    pub fn value(&self, namespace: &StateNamespace, key: &str) -> Option<String> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(namespace.clone(), key.to_string()))
            .cloned()
    }

    /// A copy of every entry, for comparing before and after an execution.
    pub fn snapshot(&self) -> HashMap<(StateNamespace, String), String> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn get(
        &self,
        namespace: &StateNamespace,
        key: &str,
    ) -> Result<Option<String>, StateStoreError> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(entries.get(&(namespace.clone(), key.to_string())).cloned())
    }

    async fn set(
        &self,
        namespace: &StateNamespace,
        key: &str,
        value: String,
    ) -> Result<(), StateStoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.insert((namespace.clone(), key.to_string()), value);
        Ok(())
    }

    async fn delete(&self, namespace: &StateNamespace, key: &str) -> Result<bool, StateStoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(entries
            .remove(&(namespace.clone(), key.to_string()))
            .is_some())
    }

    async fn compare_and_swap(
        &self,
        namespace: &StateNamespace,
        key: &str,
        expected: Option<&str>,
        new: Option<String>,
    ) -> Result<bool, StateStoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = (namespace.clone(), key.to_string());
        if entries.get(&slot).map(String::as_str) != expected {
            return Ok(false);
        }
        match new {
            Some(value) => entries.insert(slot, value),
            None => entries.remove(&slot),
        };
        Ok(true)
    }
}

/// Re-serializes a JSON document with object keys sorted and no whitespace, so equal
/// documents have equal text whatever serde_json features other crates enable.
pub fn canonical_json(text: &str) -> Result<String, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    let mut out = String::with_capacity(text.len());
    write_canonical(&value, &mut out);
    Ok(out)
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                // Serializing a string cannot fail.
                let _ = write!(out, "{}", serde_json::Value::String(key.clone()));
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

impl HostContext {
    fn namespace(&self, scope: wit::Scope) -> StateNamespace {
        let context = &self.context;
        let tenant = context.tenant_id.clone();
        match scope {
            wit::Scope::Execution => StateNamespace::Execution {
                tenant,
                execution: context.execution_id.clone(),
            },
            wit::Scope::Flow => StateNamespace::Flow {
                tenant,
                instance: context.instance_id.clone(),
                flow: context.flow_name.clone(),
            },
            wit::Scope::Instance => StateNamespace::Instance {
                tenant,
                instance: context.instance_id.clone(),
            },
            wit::Scope::Integration => StateNamespace::Integration {
                tenant,
                integration: context.integration_id.clone(),
            },
        }
    }

    fn check_key(&self, key: &str) -> Result<(), wit::StateError> {
        if key.len() > self.limits.state_key_bytes {
            return Err(wit::StateError::TooLarge(format!(
                "state key is {} bytes; the limit is {} bytes",
                key.len(),
                self.limits.state_key_bytes
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &str) -> Result<String, wit::StateError> {
        let canonical = canonical_json(value).map_err(|err| {
            wit::StateError::InvalidJson(format!("state value is not JSON: {err}"))
        })?;
        if canonical.len() > self.limits.state_value_bytes {
            return Err(wit::StateError::TooLarge(format!(
                "state value is {} bytes; the limit is {} bytes",
                canonical.len(),
                self.limits.state_value_bytes
            )));
        }
        Ok(canonical)
    }
}

fn unavailable(err: StateStoreError) -> wit::StateError {
    wit::StateError::Unavailable(err.0)
}

impl wit::Host for HostContext {
    async fn get(
        &mut self,
        scope: wit::Scope,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, wit::StateError>> {
        self.charge_host_call()?;
        if let Err(err) = self.check_key(&key) {
            return Ok(Err(err));
        }
        let namespace = self.namespace(scope);
        Ok(self
            .caps
            .state
            .get(&namespace, &key)
            .await
            .map_err(unavailable))
    }

    async fn set(
        &mut self,
        scope: wit::Scope,
        key: String,
        value: String,
    ) -> wasmtime::Result<Result<(), wit::StateError>> {
        self.charge_host_call()?;
        let value = match self.check_key(&key).and_then(|()| self.check_value(&value)) {
            Ok(value) => value,
            Err(err) => return Ok(Err(err)),
        };
        let namespace = self.namespace(scope);
        Ok(self
            .caps
            .state
            .set(&namespace, &key, value)
            .await
            .map_err(unavailable))
    }

    async fn delete(
        &mut self,
        scope: wit::Scope,
        key: String,
    ) -> wasmtime::Result<Result<bool, wit::StateError>> {
        self.charge_host_call()?;
        if let Err(err) = self.check_key(&key) {
            return Ok(Err(err));
        }
        let namespace = self.namespace(scope);
        Ok(self
            .caps
            .state
            .delete(&namespace, &key)
            .await
            .map_err(unavailable))
    }

    async fn compare_and_swap(
        &mut self,
        scope: wit::Scope,
        key: String,
        expected: Option<String>,
        new: Option<String>,
    ) -> wasmtime::Result<Result<bool, wit::StateError>> {
        self.charge_host_call()?;
        let checked = (|| {
            self.check_key(&key)?;
            // `expected` is compared, not stored: canonicalize it but do not size-limit it
            // beyond the value limit (a larger value can never be stored anyway).
            let expected = expected
                .as_deref()
                .map(|value| self.check_value(value))
                .transpose()?;
            let new = new
                .as_deref()
                .map(|value| self.check_value(value))
                .transpose()?;
            Ok((expected, new))
        })();
        let (expected, new) = match checked {
            Ok(pair) => pair,
            Err(err) => return Ok(Err(err)),
        };
        let namespace = self.namespace(scope);
        Ok(self
            .caps
            .state
            .compare_and_swap(&namespace, &key, expected.as_deref(), new)
            .await
            .map_err(unavailable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        assert_eq!(
            canonical_json(r#"{ "b": [1, {"z": 1, "a": 2}], "a": "x" }"#).unwrap(),
            r#"{"a":"x","b":[1,{"a":2,"z":1}]}"#
        );
        assert!(canonical_json("{nope").is_err());
    }

    #[tokio::test]
    async fn memory_store_compare_and_swap() {
        let store = MemoryStateStore::new();
        let ns = StateNamespace::Instance {
            tenant: "t".into(),
            instance: "i".into(),
        };
        assert!(
            store
                .compare_and_swap(&ns, "k", None, Some("1".into()))
                .await
                .unwrap()
        );
        assert!(
            !store
                .compare_and_swap(&ns, "k", None, Some("2".into()))
                .await
                .unwrap()
        );
        assert!(
            store
                .compare_and_swap(&ns, "k", Some("1"), Some("2".into()))
                .await
                .unwrap()
        );
        assert_eq!(store.get(&ns, "k").await.unwrap().as_deref(), Some("2"));
        assert!(
            store
                .compare_and_swap(&ns, "k", Some("2"), None)
                .await
                .unwrap()
        );
        assert_eq!(store.get(&ns, "k").await.unwrap(), None);
    }
}
