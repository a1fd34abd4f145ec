//! Storage of OAuth 2.0 connections (the sealed grant of an instance's connection,
//! its refresh schedule and refresh lease), of authorizations in progress, and of a
//! tenant's connection templates. Secrets reach this layer sealed only.

use async_trait::async_trait;

use super::StoreError;

/// Whether a connection's grant can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthStatus {
    /// The token is (or can be refreshed to be) valid.
    Active,
    /// The provider refused the grant (`invalid_grant`, revoked); the customer must
    /// connect again. `status_detail` says why.
    Error,
}

impl OAuthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthStatus::Active => "active",
            OAuthStatus::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "active" => Ok(OAuthStatus::Active),
            "error" => Ok(OAuthStatus::Error),
            other => Err(StoreError::Backend(format!(
                "unknown OAuth connection status `{other}`"
            ))),
        }
    }
}

/// An instance's OAuth connection as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConnection {
    pub tenant_id: String,
    pub instance_id: String,
    pub connection_key: String,
    pub status: OAuthStatus,
    pub status_detail: Option<String>,
    /// The grant, sealed (`oauth::grant`).
    pub sealed_grant: Vec<u8>,
    pub expires_at_ms: Option<i64>,
    /// When the background refresher should refresh it (`None`: never, e.g. a token
    /// that does not expire or cannot be refreshed).
    pub refresh_due_ms: Option<i64>,
    /// When the grant was last obtained or refreshed.
    pub refreshed_ms: i64,
    pub updated_ms: i64,
}

/// An authorization in progress, named by the id inside its `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub instance_id: String,
    pub connection_key: String,
    /// The PKCE verifier (empty without PKCE), sealed.
    pub sealed_verifier: Vec<u8>,
    /// Opened in a popup (the callback answers with a page that closes it) rather
    /// than by a redirect of the whole page.
    pub popup: bool,
    pub expires_ms: i64,
}

/// A tenant's fixed values of one component's connection type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionTemplate {
    pub tenant_id: String,
    pub component_key: String,
    pub connection_key: String,
    /// The fields as a sealed JSON object.
    pub sealed_fields: Vec<u8>,
    /// The names of the fields, for listing without opening them.
    pub field_names: Vec<String>,
    pub created_ms: i64,
}

/// (tenant, instance, connection key) of a connection.
pub type ConnectionId = (String, String, String);

#[async_trait]
pub trait OAuthStore: Send + Sync {
    async fn put_pending_authorization(
        &self,
        pending: &PendingAuthorization,
    ) -> Result<(), StoreError>;
    /// Removes and returns the pending authorization `id`: a state is used once.
    async fn take_pending_authorization(
        &self,
        id: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError>;

    async fn oauth_connection(
        &self,
        tenant: &str,
        instance: &str,
        key: &str,
    ) -> Result<Option<OAuthConnection>, StoreError>;
    async fn oauth_connections_of(
        &self,
        tenant: &str,
        instance: &str,
    ) -> Result<Vec<OAuthConnection>, StoreError>;
    /// Inserts or replaces the connection (a new grant), dropping any lease on it.
    async fn save_oauth_connection(&self, connection: &OAuthConnection) -> Result<(), StoreError>;
    /// Takes the refresh lease of a connection until `until_ms` for `owner` if no
    /// other owner holds an unexpired one; whether it was taken.
    async fn lease_oauth_connection(
        &self,
        tenant: &str,
        instance: &str,
        key: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Writes a refreshed (or failed) connection and releases the lease, if `owner`
    /// still holds it; whether it did. The new grant is saved before the lease goes.
    async fn finish_oauth_refresh(
        &self,
        connection: &OAuthConnection,
        owner: &str,
    ) -> Result<bool, StoreError>;
    /// Releases `owner`'s lease without changing the grant.
    async fn release_oauth_lease(
        &self,
        tenant: &str,
        instance: &str,
        key: &str,
        owner: &str,
    ) -> Result<(), StoreError>;
    /// Active connections whose refresh is due at `now_ms` and that no one holds a
    /// lease on, at most `limit`.
    async fn due_oauth_connections(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<ConnectionId>, StoreError>;
    async fn delete_oauth_connection(
        &self,
        tenant: &str,
        instance: &str,
        key: &str,
    ) -> Result<(), StoreError>;

    /// Stores a template; a conflict if one exists (templates are set once).
    async fn create_connection_template(
        &self,
        template: &ConnectionTemplate,
    ) -> Result<(), StoreError>;
    async fn connection_template(
        &self,
        tenant: &str,
        component: &str,
        key: &str,
    ) -> Result<Option<ConnectionTemplate>, StoreError>;
    async fn connection_templates(
        &self,
        tenant: &str,
    ) -> Result<Vec<ConnectionTemplate>, StoreError>;
}
