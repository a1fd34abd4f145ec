//! Persisted key/value state: the [`StateStore`] trait a host plugs its storage into,
//! the state quotas every store enforces on write ([`StateQuota`], counted per quota
//! group and per tenant as [`StateUsage`]), an in-memory store, and the
//! `sluice:flow/state` host functions, which resolve a scope to a [`StateNamespace`],
//! canonicalize JSON and enforce size limits.

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
    Execution {
        /// The tenant.
        tenant: String,
        /// The execution.
        execution: String,
    },
    /// One flow of one instance.
    #[serde(rename_all = "camelCase")]
    Flow {
        /// The tenant.
        tenant: String,
        /// The instance.
        instance: String,
        /// The flow's name.
        flow: String,
    },
    /// All flows of one instance.
    #[serde(rename_all = "camelCase")]
    Instance {
        /// The tenant.
        tenant: String,
        /// The instance.
        instance: String,
    },
    /// All instances of one integration.
    #[serde(rename_all = "camelCase")]
    Integration {
        /// The tenant.
        tenant: String,
        /// The integration.
        integration: String,
    },
}

impl StateNamespace {
    /// The tenant that owns the namespace.
    pub fn tenant(&self) -> &str {
        match self {
            StateNamespace::Execution { tenant, .. }
            | StateNamespace::Flow { tenant, .. }
            | StateNamespace::Instance { tenant, .. }
            | StateNamespace::Integration { tenant, .. } => tenant,
        }
    }

    /// The quota group the namespace's keys count against: an instance's flow and
    /// instance scopes share `instance:<id>`; an execution scope (`execution:<id>`,
    /// dropped with the execution) and an integration scope (`integration:<key>`,
    /// shared by the integration's instances) each have a group of their own with
    /// the same per-instance quota. Every group of a tenant also counts against the
    /// tenant's total.
    pub fn quota_group(&self) -> String {
        match self {
            StateNamespace::Execution { execution, .. } => format!("execution:{execution}"),
            StateNamespace::Flow { instance, .. } | StateNamespace::Instance { instance, .. } => {
                format!("instance:{instance}")
            }
            StateNamespace::Integration { integration, .. } => {
                format!("integration:{integration}")
            }
        }
    }
}

/// How much state may be kept, checked on every write that adds bytes or keys.
/// Bytes are those of keys plus canonical-JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateQuota {
    /// Bytes one quota group (an instance's flow and instance scopes) may hold.
    pub instance_bytes: u64,
    /// Keys one quota group may hold.
    pub instance_keys: u64,
    /// Bytes all of a tenant's state may hold.
    pub tenant_bytes: u64,
    /// Keys all of a tenant's state may hold.
    pub tenant_keys: u64,
}

impl Default for StateQuota {
    fn default() -> Self {
        StateQuota {
            instance_bytes: 64 << 20,
            instance_keys: 10_000,
            tenant_bytes: 1 << 30,
            tenant_keys: 1_000_000,
        }
    }
}

/// Bytes and keys held by a quota group or a tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateUsage {
    /// Bytes: keys plus canonical values.
    pub bytes: u64,
    /// Keys.
    pub keys: u64,
}

/// What one write changes: bytes and keys added (negative: freed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateDelta {
    /// Bytes added (negative: freed).
    pub bytes: i64,
    /// Keys added (negative: deleted).
    pub keys: i64,
}

impl StateDelta {
    /// The change from replacing an entry of `old` bytes (`None`: absent) with one of
    /// `new` bytes (`None`: deleted). Sizes come from [`entry_size`].
    pub fn replacing(old: Option<u64>, new: Option<u64>) -> Self {
        let size = |entry: Option<u64>| i64::try_from(entry.unwrap_or(0)).unwrap_or(i64::MAX);
        StateDelta {
            bytes: size(new) - size(old),
            keys: i64::from(new.is_some()) - i64::from(old.is_some()),
        }
    }
}

impl StateUsage {
    /// The usage after `delta`, never below zero.
    pub fn apply(self, delta: StateDelta) -> StateUsage {
        let shift = |value: u64, by: i64| {
            if by >= 0 {
                value.saturating_add(by.unsigned_abs())
            } else {
                value.saturating_sub(by.unsigned_abs())
            }
        };
        StateUsage {
            bytes: shift(self.bytes, delta.bytes),
            keys: shift(self.keys, delta.keys),
        }
    }
}

/// The size an entry counts for: its key plus its value, in bytes.
pub fn entry_size(key: &str, value: &str) -> u64 {
    (key.len() + value.len()) as u64
}

impl StateQuota {
    /// Checks a write that changes usage by `delta`, given the group's and the
    /// tenant's usage before it. A write that adds neither bytes nor keys always
    /// passes, so that state over a lowered quota can still be shrunk. The error
    /// names the quota that would be passed.
    pub fn check(
        &self,
        group: StateUsage,
        tenant: StateUsage,
        delta: StateDelta,
    ) -> Result<(), StateStoreError> {
        let group_after = group.apply(delta);
        let tenant_after = tenant.apply(delta);
        let refuse = |what: &str, used: u64, quota: u64| {
            Err(StateStoreError::QuotaExceeded(format!(
                "the write would hold {used} {what}; the quota is {quota}"
            )))
        };
        if delta.bytes > 0 {
            if group_after.bytes > self.instance_bytes {
                return refuse(
                    "bytes of the instance's state",
                    group_after.bytes,
                    self.instance_bytes,
                );
            }
            if tenant_after.bytes > self.tenant_bytes {
                return refuse(
                    "bytes of the tenant's state",
                    tenant_after.bytes,
                    self.tenant_bytes,
                );
            }
        }
        if delta.keys > 0 {
            if group_after.keys > self.instance_keys {
                return refuse(
                    "keys in the instance's state",
                    group_after.keys,
                    self.instance_keys,
                );
            }
            if tenant_after.keys > self.tenant_keys {
                return refuse(
                    "keys in the tenant's state",
                    tenant_after.keys,
                    self.tenant_keys,
                );
            }
        }
        Ok(())
    }
}

/// A state store refused a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateStoreError {
    /// The store could not serve it; the guest sees `state-error.unavailable`.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// The write would pass a [`StateQuota`]; the guest sees
    /// `state-error.quota-exceeded`. Nothing was written.
    #[error("state quota exceeded: {0}")]
    QuotaExceeded(String),
}

/// Storage of state values. Values are canonical JSON text (see [`canonical_json`]),
/// so byte equality is JSON equality and compare-and-swap can compare text.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The value under `key` in `namespace`, if any.
    async fn get(
        &self,
        namespace: &StateNamespace,
        key: &str,
    ) -> Result<Option<String>, StateStoreError>;
    /// Stores `value` under `key`, within the quota.
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
/// It enforces its [`StateQuota`] (the default unless given one) like the host's
/// store, so a guest flooding state cannot take a `sluice run` process's memory.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    inner: Mutex<MemoryInner>,
    quota: StateQuota,
}

#[derive(Debug, Default)]
struct MemoryInner {
    entries: HashMap<(StateNamespace, String), String>,
    /// Usage by (tenant, quota group).
    groups: HashMap<(String, String), StateUsage>,
    /// Usage by tenant.
    tenants: HashMap<String, StateUsage>,
}

impl MemoryInner {
    /// Replaces (`new` of `None`: removes) an entry and keeps the usage counters in
    /// step, refusing a write past `quota` when one is given.
    fn write(
        &mut self,
        quota: Option<&StateQuota>,
        namespace: &StateNamespace,
        key: &str,
        new: Option<String>,
    ) -> Result<Option<String>, StateStoreError> {
        let slot = (namespace.clone(), key.to_string());
        let old_size = self.entries.get(&slot).map(|value| entry_size(key, value));
        let new_size = new.as_deref().map(|value| entry_size(key, value));
        let delta = StateDelta::replacing(old_size, new_size);
        let tenant = namespace.tenant().to_string();
        let group_key = (tenant.clone(), namespace.quota_group());
        let group = self.groups.get(&group_key).copied().unwrap_or_default();
        let total = self.tenants.get(&tenant).copied().unwrap_or_default();
        if let Some(quota) = quota {
            quota.check(group, total, delta)?;
        }
        self.groups.insert(group_key, group.apply(delta));
        self.tenants.insert(tenant, total.apply(delta));
        Ok(match new {
            Some(value) => self.entries.insert(slot, value),
            None => self.entries.remove(&slot),
        })
    }
}

impl MemoryStateStore {
    /// An empty store with the default quota.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that enforces `quota` instead of the default.
    pub fn with_quota(quota: StateQuota) -> Self {
        MemoryStateStore {
            inner: Mutex::default(),
            quota,
        }
    }

    /// The quota this store enforces.
    pub fn quota(&self) -> StateQuota {
        self.quota
    }

    /// Bytes and keys held by the quota group of `namespace`.
    pub fn usage(&self, namespace: &StateNamespace) -> StateUsage {
        let inner = self.lock();
        inner
            .groups
            .get(&(namespace.tenant().to_string(), namespace.quota_group()))
            .copied()
            .unwrap_or_default()
    }

    /// Bytes and keys held by all of `tenant`'s state.
    pub fn tenant_usage(&self, tenant: &str) -> StateUsage {
        self.lock().tenants.get(tenant).copied().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every entry of `namespace`, sorted by key.
    pub fn entries(&self, namespace: &StateNamespace) -> Vec<(String, String)> {
        let inner = self.lock();
        let mut found: Vec<(String, String)> = inner
            .entries
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect();
        found.sort();
        found
    }

    /// Sets `key` directly (the value must already be canonical JSON, see
    /// [`canonical_json`]); for seeding state before an execution. Counted in the
    /// usage, but not refused by the quota: the caller chose it.
    pub fn put(&self, namespace: &StateNamespace, key: &str, value: String) {
        // Without a quota to check, the write cannot fail.
        let _ = self.lock().write(None, namespace, key, Some(value));
    }

    /// The value of `key`, if set.
    pub fn value(&self, namespace: &StateNamespace, key: &str) -> Option<String> {
        self.lock()
            .entries
            .get(&(namespace.clone(), key.to_string()))
            .cloned()
    }

    /// A copy of every entry, for comparing before and after an execution.
    pub fn snapshot(&self) -> HashMap<(StateNamespace, String), String> {
        self.lock().entries.clone()
    }
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn get(
        &self,
        namespace: &StateNamespace,
        key: &str,
    ) -> Result<Option<String>, StateStoreError> {
        Ok(self.value(namespace, key))
    }

    async fn set(
        &self,
        namespace: &StateNamespace,
        key: &str,
        value: String,
    ) -> Result<(), StateStoreError> {
        self.lock()
            .write(Some(&self.quota), namespace, key, Some(value))?;
        Ok(())
    }

    async fn delete(&self, namespace: &StateNamespace, key: &str) -> Result<bool, StateStoreError> {
        let removed = self.lock().write(Some(&self.quota), namespace, key, None)?;
        Ok(removed.is_some())
    }

    async fn compare_and_swap(
        &self,
        namespace: &StateNamespace,
        key: &str,
        expected: Option<&str>,
        new: Option<String>,
    ) -> Result<bool, StateStoreError> {
        let mut inner = self.lock();
        let slot = (namespace.clone(), key.to_string());
        if inner.entries.get(&slot).map(String::as_str) != expected {
            return Ok(false);
        }
        inner.write(Some(&self.quota), namespace, key, new)?;
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

fn store_error(err: StateStoreError) -> wit::StateError {
    match err {
        StateStoreError::Unavailable(message) => wit::StateError::Unavailable(message),
        StateStoreError::QuotaExceeded(message) => wit::StateError::QuotaExceeded(message),
    }
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
            .map_err(store_error))
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
            .map_err(store_error))
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
            .map_err(store_error))
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
            .map_err(store_error))
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

    fn instance(tenant: &str, instance: &str) -> StateNamespace {
        StateNamespace::Instance {
            tenant: tenant.into(),
            instance: instance.into(),
        }
    }

    #[tokio::test]
    async fn memory_store_counts_overwrites_and_deletes() {
        let store = MemoryStateStore::with_quota(StateQuota {
            instance_bytes: 100,
            ..StateQuota::default()
        });
        let ns = instance("t", "i");
        let flow = StateNamespace::Flow {
            tenant: "t".into(),
            instance: "i".into(),
            flow: "f".into(),
        };
        let value = |len: usize| "1".repeat(len);
        // 1 + 59 bytes, then an overwrite of the same size: the old value is freed.
        store.set(&ns, "a", value(59)).await.unwrap();
        store.set(&ns, "a", value(59)).await.unwrap();
        assert_eq!(store.usage(&ns), StateUsage { bytes: 60, keys: 1 });
        // The flow scope of the same instance shares its quota.
        assert!(matches!(
            store.set(&flow, "b", value(40)).await,
            Err(StateStoreError::QuotaExceeded(_))
        ));
        assert_eq!(store.value(&flow, "b"), None);
        store.set(&flow, "b", value(39)).await.unwrap();
        assert_eq!(
            store.usage(&ns),
            StateUsage {
                bytes: 100,
                keys: 2
            }
        );
        // Shrinking always works; deleting frees.
        store.set(&ns, "a", value(9)).await.unwrap();
        assert!(store.delete(&flow, "b").await.unwrap());
        assert_eq!(store.usage(&ns), StateUsage { bytes: 10, keys: 1 });
        assert!(
            store
                .compare_and_swap(&ns, "a", Some(&value(9)), None)
                .await
                .unwrap()
        );
        assert_eq!(store.usage(&ns), StateUsage::default());
        assert_eq!(store.tenant_usage("t"), StateUsage::default());
    }

    #[tokio::test]
    async fn memory_store_enforces_key_and_tenant_quotas() {
        let store = MemoryStateStore::with_quota(StateQuota {
            instance_bytes: 1000,
            instance_keys: 2,
            tenant_bytes: 15,
            tenant_keys: 100,
        });
        let (one, two) = (instance("t", "1"), instance("t", "2"));
        store.set(&one, "a", "1".into()).await.unwrap();
        store.set(&one, "b", "1".into()).await.unwrap();
        assert!(matches!(
            store
                .compare_and_swap(&one, "c", None, Some("1".into()))
                .await,
            Err(StateStoreError::QuotaExceeded(_))
        ));
        // Another instance of the tenant has its own key quota but shares the
        // tenant's bytes.
        store.set(&two, "abcdefghi", "1".into()).await.unwrap();
        let err = store.set(&two, "b", "1".into()).await.unwrap_err();
        assert!(err.to_string().contains("tenant"), "{err}");
        assert_eq!(store.tenant_usage("t"), StateUsage { bytes: 14, keys: 3 });
        // Another tenant is not affected.
        store
            .set(&instance("u", "1"), "b", "1".into())
            .await
            .unwrap();
    }
}
