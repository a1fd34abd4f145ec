//! Config variables of the executing instance: the [`ConfigSource`] trait, a static
//! source, and the `sluice:flow/config` host functions.

use std::collections::BTreeMap;

use super::HostContext;
use crate::bindings::flow_world::sluice::flow::config as wit;

/// The instance's config variables; values are JSON documents.
pub trait ConfigSource: Send + Sync {
    /// The value of config variable `key`, or `None` when it has none.
    fn get(&self, key: &str) -> Option<String>;
    /// Every variable, sorted by key.
    fn all(&self) -> Vec<(String, String)>;
}

/// A fixed map of config variables.
#[derive(Debug, Default, Clone)]
pub struct StaticConfig {
    values: BTreeMap<String, String>,
}

impl StaticConfig {
    /// An empty set of config variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to the JSON document `value`.
    pub fn with_json(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.values.insert(key.into(), value.to_string());
        self
    }

    /// Sets `key` to the string `value` (stored as a JSON string).
    pub fn with_str(self, key: impl Into<String>, value: &str) -> Self {
        self.with_json(key, serde_json::Value::String(value.to_string()))
    }
}

impl ConfigSource for StaticConfig {
    fn get(&self, key: &str) -> Option<String> {
        self.values.get(key).cloned()
    }

    fn all(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

impl wit::Host for HostContext {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.charge_host_call()?;
        Ok(self.caps.config.get(&key))
    }

    fn all(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        self.charge_host_call()?;
        Ok(self.caps.config.all())
    }
}
