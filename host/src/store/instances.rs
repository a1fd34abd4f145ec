//! Storage of deployed instances and their webhook tokens. Connection secrets are
//! stored sealed (see `secrets`); this layer never sees them in clear.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreError;

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceStatus {
    /// Being configured (by its customer in the configuration wizard, or over the API
    /// with `draft`): it has webhooks, but they run nothing until it is deployed.
    Draft,
    /// Deploy hooks and deploy flows are running.
    Deploying,
    /// Deployed: its webhooks run flows (when enabled).
    Deployed,
    /// A deploy hook or deploy flow failed; `statusDetail` says which and why.
    Failed,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Draft => "draft",
            InstanceStatus::Deploying => "deploying",
            InstanceStatus::Deployed => "deployed",
            InstanceStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "draft" => Ok(InstanceStatus::Draft),
            "deploying" => Ok(InstanceStatus::Deploying),
            "deployed" => Ok(InstanceStatus::Deployed),
            "failed" => Ok(InstanceStatus::Failed),
            other => Err(StoreError::Backend(format!(
                "unknown instance status `{other}`"
            ))),
        }
    }
}

/// Per-flow endpoint settings of an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowSettings {
    /// sha256 hex digests of the API keys a caller must send (`api-key` header);
    /// empty: no key required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_key_hashes: Vec<String>,
    /// Answer webhooks synchronously by default (a caller can still ask with the
    /// `sluice-synchronous: true` header).
    #[serde(default)]
    pub synchronous: bool,
}

/// An instance as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub name: String,
    pub integration_key: String,
    pub integration_version: i64,
    pub enabled: bool,
    /// Config variables by key.
    pub config: BTreeMap<String, Value>,
    /// Sealed JSON of the connections (`secrets::Secrets::seal` with the instance id).
    pub sealed_connections: Vec<u8>,
    /// Outbound HTTP allow-list rules.
    pub allowed_hosts: Vec<String>,
    pub flow_settings: BTreeMap<String, FlowSettings>,
    pub status: InstanceStatus,
    pub status_detail: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// An instance with what its executions' context needs besides the row: its
/// customer's external id and its webhook tokens by flow key. Read in one store call,
/// so preparing an execution costs one round trip to the store, not three.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceContext {
    pub instance: Instance,
    pub customer_external_id: Option<String>,
    /// Webhook tokens by flow key.
    pub webhooks: BTreeMap<String, String>,
}

/// A webhook token and what it routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub token: String,
    pub tenant_id: String,
    pub instance_id: String,
    pub flow_key: String,
}

#[async_trait]
pub trait InstanceStore: Send + Sync {
    /// Inserts an instance with one webhook token per flow, atomically.
    async fn create_instance(
        &self,
        instance: &Instance,
        webhooks: &[(String, String)],
    ) -> Result<(), StoreError>;
    async fn get_instance(&self, tenant: &str, id: &str) -> Result<Option<Instance>, StoreError>;
    /// The tenant's instances, newest first, optionally of one customer.
    async fn list_instances(
        &self,
        tenant: &str,
        customer: Option<&str>,
    ) -> Result<Vec<Instance>, StoreError>;
    /// Replaces the stored row (by tenant and id) with `instance`.
    async fn save_instance(&self, instance: &Instance) -> Result<(), StoreError>;
    /// Makes the instance's webhooks exactly `webhooks` (flow key, token): tokens of
    /// flows that remain are kept, new flows get the given tokens.
    async fn set_webhooks(
        &self,
        tenant: &str,
        instance: &str,
        webhooks: &[(String, String)],
    ) -> Result<(), StoreError>;
    /// Webhooks of an instance, by flow key.
    async fn webhooks_of(
        &self,
        tenant: &str,
        instance: &str,
    ) -> Result<BTreeMap<String, String>, StoreError>;
    /// What a webhook token routes to.
    async fn webhook(&self, token: &str) -> Result<Option<Webhook>, StoreError>;
    /// An instance with its execution context (see [`InstanceContext`]), in one call.
    async fn instance_context(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<InstanceContext>, StoreError>;
    /// What a webhook token routes to, with its instance's execution context, in one
    /// call: the webhook hot path. `None` if the token or its instance is gone.
    async fn webhook_context(
        &self,
        token: &str,
    ) -> Result<Option<(Webhook, InstanceContext)>, StoreError>;
    /// Deletes the instance, its webhooks and its queued executions.
    async fn delete_instance(&self, tenant: &str, id: &str) -> Result<(), StoreError>;
}
