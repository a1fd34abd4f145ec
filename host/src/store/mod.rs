//! Everything the host keeps durably, behind one trait per resource so a PostgreSQL
//! backend can follow without touching the API code. [`Store`] is the sum of them;
//! the embedded default is [`sqlite::SqliteStore`].
//!
//! Every method that reads or writes a tenant's resource takes the tenant's id, and a
//! resource of another tenant is simply not found: scoping lives here, not in callers.

pub mod components;
pub mod customers;
pub mod embed_sessions;
pub mod embed_settings;
pub mod executions;
pub mod instances;
pub mod integrations;
pub mod oauth;
pub mod schedules;
pub mod signing_keys;
pub mod sqlite;
pub mod state;
pub mod tenants;
pub mod uploads;

pub use components::ComponentStore;
pub use customers::CustomerStore;
pub use embed_sessions::EmbedSessionStore;
pub use embed_settings::EmbedSettingsStore;
pub use executions::{ExecutionArchive, ExecutionQueue, ExecutionStore};
pub use instances::InstanceStore;
pub use integrations::IntegrationStore;
pub use oauth::OAuthStore;
pub use schedules::ScheduleStore;
pub use signing_keys::SigningKeyStore;
pub use state::{QuotaExceeded, SharedStateStore};
pub use tenants::TenantStore;
pub use uploads::ComponentUploadStore;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such resource (or it belongs to another tenant).
    #[error("{0} not found")]
    NotFound(String),
    /// The operation conflicts with existing data (a duplicate, a resource in use).
    #[error("{0}")]
    Conflict(String),
    /// The backend failed (I/O, corruption, a bug); not the caller's fault.
    #[error("store failure: {0}")]
    Backend(String),
}

/// All of the host's storage.
pub trait Store:
    TenantStore
    + CustomerStore
    + ComponentStore
    + IntegrationStore
    + InstanceStore
    + ExecutionStore
    + SharedStateStore
    + ScheduleStore
    + OAuthStore
    + SigningKeyStore
    + EmbedSettingsStore
    + EmbedSessionStore
    + ComponentUploadStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: TenantStore
        + CustomerStore
        + ComponentStore
        + IntegrationStore
        + InstanceStore
        + ExecutionStore
        + SharedStateStore
        + ScheduleStore
        + OAuthStore
        + SigningKeyStore
        + EmbedSettingsStore
        + EmbedSessionStore
        + ComponentUploadStore
        + Send
        + Sync
        + 'static
{
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A new time-ordered id (UUID v7), so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
