//! Storage of a tenant's customers: the businesses its integrations are deployed for,
//! each with an optional external id (the tenant's own id for it, unique per tenant).

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

/// A customer of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    pub name: String,
    /// The tenant's id for this customer; unique within the tenant when set.
    pub external_id: Option<String>,
    pub created_ms: i64,
}

/// A change to a customer: `None` leaves a field as it is; `external_id` of
/// `Some(None)` removes the external id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerUpdate {
    pub name: Option<String>,
    pub external_id: Option<Option<String>>,
}

#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Creates a customer. A duplicate external id is a [`StoreError::Conflict`].
    async fn create_customer(
        &self,
        tenant: &str,
        name: &str,
        external_id: Option<&str>,
    ) -> Result<Customer, StoreError>;
    async fn get_customer(&self, tenant: &str, id: &str) -> Result<Option<Customer>, StoreError>;
    /// The tenant's customers, oldest first; only the one with `external_id` when given.
    async fn list_customers(
        &self,
        tenant: &str,
        external_id: Option<&str>,
    ) -> Result<Vec<Customer>, StoreError>;
    /// Applies `update` and returns the customer as it now is. Not found and duplicate
    /// external ids are errors.
    async fn update_customer(
        &self,
        tenant: &str,
        id: &str,
        update: CustomerUpdate,
    ) -> Result<Customer, StoreError>;
    /// Deletes a customer; a [`StoreError::Conflict`] naming them while instances of it
    /// exist.
    async fn delete_customer(&self, tenant: &str, id: &str) -> Result<(), StoreError>;
}
