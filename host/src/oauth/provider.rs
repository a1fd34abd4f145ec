//! [`HostConnections`]: the connections an execution of an instance sees. Fields come
//! from the instance (sealed with it), OAuth tokens from the instance's grants,
//! refreshed first when due; the refresh token and the client secret never reach it.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sluice_runtime::{Connection, ConnectionError, ConnectionProvider, ExecutionContext};

use super::OAuthError;
use super::settings::is_hidden_from_guest;
use crate::app::AppState;

/// Connections of one instance, for its executions.
pub struct HostConnections {
    state: AppState,
    tenant: String,
    instance: String,
    fields: HashMap<String, Connection>,
}

impl HostConnections {
    /// The instance's connections: `fields` as opened from the instance row.
    pub fn new(state: AppState, tenant: &str, instance: &str, fields: Vec<Connection>) -> Self {
        HostConnections {
            state,
            tenant: tenant.to_string(),
            instance: instance.to_string(),
            fields: fields
                .into_iter()
                .map(|connection| (connection.key.clone(), connection))
                .collect(),
        }
    }
}

#[async_trait]
impl ConnectionProvider for HostConnections {
    async fn get(
        &self,
        _context: &ExecutionContext,
        key: &str,
    ) -> Result<Connection, ConnectionError> {
        let base = self.fields.get(key).cloned();
        let grant = self
            .state
            .oauth
            .current(&self.state, &self.tenant, &self.instance, key)
            .await;
        let grant = match grant {
            Ok(Some(grant)) => grant,
            Ok(None) => {
                return base.ok_or_else(|| ConnectionError::NotFound(key.to_string()));
            }
            Err(OAuthError::NeedsReconnect(reason)) => {
                return Err(ConnectionError::Expired {
                    key: key.to_string(),
                    reason: format!("the customer must connect it again ({reason})"),
                });
            }
            Err(OAuthError::Store(err)) => {
                tracing::warn!(error = %err, "reading an OAuth connection failed");
                return Err(ConnectionError::Unavailable(
                    "the connection store failed; retry later".into(),
                ));
            }
            Err(err) => {
                return Err(ConnectionError::Expired {
                    key: key.to_string(),
                    reason: err.to_string(),
                });
            }
        };
        let mut connection = base.unwrap_or_else(|| Connection {
            key: key.to_string(),
            kind: "oauth2".into(),
            fields: Value::Object(Map::new()),
            token: None,
        });
        if let Some(fields) = connection.fields.as_object_mut() {
            fields.retain(|name, _| !is_hidden_from_guest(name));
        }
        connection.token = Some(grant.guest_token());
        Ok(connection)
    }
}
