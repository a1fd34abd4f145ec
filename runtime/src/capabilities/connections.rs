//! Connections (credentials): the [`ConnectionProvider`] trait through which the host
//! hands out a connection by its config-variable key, a static provider, and the
//! `sluice:flow/connections` host function. Secrets never appear in `Debug` output.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::HostContext;
use crate::bindings::flow_world::sluice::flow::connections as wit;
use crate::types::ExecutionContext;

/// An OAuth 2.0 access token; refreshing it is the provider's job.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthToken {
    /// The access token.
    pub access_token: String,
    /// Its type, as the token endpoint named it (usually `Bearer`).
    pub token_type: String,
    /// When it expires, in milliseconds since the Unix epoch, if the provider said.
    pub expires_at_ms: Option<u64>,
    /// The scopes it was granted.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthToken")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// A connection as a guest receives it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Config-variable key of the connection.
    pub key: String,
    /// Connection type as declared by the component (e.g. `api-key`, `oauth2`).
    pub kind: String,
    /// Input fields, as a JSON object.
    pub fields: serde_json::Value,
    /// The OAuth token, for an OAuth connection.
    pub token: Option<OAuthToken>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field_names: Vec<&String> = self
            .fields
            .as_object()
            .map(|fields| fields.keys().collect())
            .unwrap_or_default();
        f.debug_struct("Connection")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("fields", &field_names)
            .field("token", &self.token)
            .finish()
    }
}

/// Why a connection could not be handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("no connection `{0}` is configured for this instance")]
    /// The instance has no connection under this key.
    NotFound(String),
    #[error("connection `{key}` expired and could not be refreshed: {reason}")]
    /// Its token expired and could not be refreshed.
    Expired {
        /// The connection's key.
        key: String,
        /// Why the refresh failed.
        reason: String,
    },
    #[error("connection store unavailable: {0}")]
    /// The backing store could not be read.
    Unavailable(String),
}

/// Hands out connections of the executing instance.
#[async_trait]
pub trait ConnectionProvider: Send + Sync {
    /// The connection under `key`, with a token that is still valid.
    async fn get(
        &self,
        context: &ExecutionContext,
        key: &str,
    ) -> Result<Connection, ConnectionError>;
}

/// A fixed set of connections, by key; for tests, the harness and the CLI.
#[derive(Debug, Default, Clone)]
pub struct StaticConnections {
    connections: HashMap<String, Connection>,
}

impl StaticConnections {
    /// No connections.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `connection` under its key.
    pub fn with(mut self, connection: Connection) -> Self {
        self.connections.insert(connection.key.clone(), connection);
        self
    }
}

#[async_trait]
impl ConnectionProvider for StaticConnections {
    async fn get(
        &self,
        _context: &ExecutionContext,
        key: &str,
    ) -> Result<Connection, ConnectionError> {
        let connection = self
            .connections
            .get(key)
            .cloned()
            .ok_or_else(|| ConnectionError::NotFound(key.to_string()))?;
        // A static token cannot be refreshed: hand out an expired one as an error, the
        // way a real provider reports a failed refresh.
        if let Some(expires) = connection
            .token
            .as_ref()
            .and_then(|token| token.expires_at_ms)
            && expires <= super::log::now_ms()
        {
            return Err(ConnectionError::Expired {
                key: key.to_string(),
                reason: "the token's expiry is in the past and no refresh is configured".into(),
            });
        }
        Ok(connection)
    }
}

impl wit::Host for HostContext {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<wit::Connection, wit::ConnectionError>> {
        self.charge_host_call()?;
        let found = self.caps.connections.get(&self.context, &key).await;
        Ok(match found {
            Ok(connection) => Ok(wit::Connection {
                key: connection.key,
                kind: connection.kind,
                fields: connection.fields.to_string(),
                token: connection.token.map(|token| wit::OauthToken {
                    access_token: token.access_token,
                    token_type: token.token_type,
                    expires_at_ms: token.expires_at_ms,
                    scopes: token.scopes,
                }),
            }),
            Err(err @ ConnectionError::NotFound(_)) => {
                Err(wit::ConnectionError::NotFound(err.to_string()))
            }
            Err(err @ ConnectionError::Expired { .. }) => {
                Err(wit::ConnectionError::Expired(err.to_string()))
            }
            Err(err @ ConnectionError::Unavailable(_)) => {
                Err(wit::ConnectionError::Unavailable(err.to_string()))
            }
        })
    }
}
